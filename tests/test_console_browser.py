"""The console page in headless Chromium (Debian's /usr/bin/chromium driven by Playwright;
no browser download). Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from _console import (
    CI_TOKEN,
    KARGO_TOKEN,
    MARKET_CLOSED,
    MARKET_OPEN,
    commit_count,
    start_console,
)
from _gitfix import REPO_ROOT, git
from playwright.sync_api import expect

CHROMIUM = os.environ.get("PIPECTL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
TAG = "0123abc"
STAGES = ["ci", "integration-test", "beta", "paper", "live"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (or set PIPECTL_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # Playwright gives every launch a fresh temporary profile (--user-data-dir).
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def console(tmp_path):
    with start_console(tmp_path) as c:
        yield c


@pytest.fixture
def page(browser, console):
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on(
        "console",
        lambda msg: errors.append(msg.text) if msg.type == "error" else None,
    )
    pg.goto(f"{console.url}/login?token={console.login_token}")
    pg.wait_for_selector(".stage[data-stage=live]")
    yield pg
    context.close()
    # CSP violations and script errors show up here; expected HTTP errors (409) do not.
    assert not [e for e in errors if "Failed to load resource" not in e], errors


def shot(pg, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def card(pg, stage: str):
    return pg.locator(f".stage[data-stage={stage}]")


def ci_pass(console, tag: str) -> None:
    r = console.client().request(
        "POST",
        "/api/v1/inttest",
        headers={"Authorization": f"Bearer {CI_TOKEN}", "Content-Type": "application/json"},
        body=json.dumps({"tag": tag, "exit_code": 0, "results": {"passed": 4}}).encode(),
    )
    assert r.status == 201, r.body


def seed_beta(console, tag: str = TAG) -> None:
    saved = console.clock()
    console.clock.set(MARKET_CLOSED)
    ci_pass(console, tag)
    r = console.post_json("/api/v1/promote", {"stage": "beta", "tag": tag, "notes": "seed"})
    assert r.status == 200, r.body
    console.clock.set(saved)


def actions(console) -> list[str]:
    return [e["action"] for e in console.audit_entries()]


def reload(pg) -> None:
    pg.reload()
    pg.wait_for_selector(".stage[data-stage=live]")


# --- tests -------------------------------------------------------------------------------------


def test_the_five_stages_render_in_order(page, console):
    names = page.locator(".stage .stage-name").all_text_contents()
    assert names == STAGES
    assert page.locator("#user").text_content() == "alice@example.com"
    market = page.locator("#market")
    assert market.get_attribute("data-state") == "closed"
    assert market.text_content().startswith("CLOSED — promotions allowed, next open Fri, Aug 14")
    assert "Audit log verified: 0 entries" in page.locator("#verify").text_content()
    # Market indicator on the market-gated stages only; Promote only where a stage deploys.
    for stage in STAGES:
        c = card(page, stage)
        gated = stage in ("paper", "live")
        assert c.locator(".stage-market").is_visible() is gated
        assert c.locator("form.promote").is_visible() is (stage in ("beta", "paper", "live"))
        assert c.locator(".enabled-badge").text_content() == "enabled"
    assert "approval with notes" in card(page, "live").locator(".gates").text_content()
    shot(page, "01-five-stages")


def test_promote_with_notes_creates_the_commit_and_the_audit_row(page, console):
    ci_pass(console, TAG)
    reload(page)
    beta = card(page, "beta")
    assert beta.locator(".tag-input").input_value() == TAG  # suggested: the passed tag
    before = commit_count(console.repo)
    beta.locator("textarea[name=notes]").fill("first deploy to beta")
    beta.locator(".promote-button").click()
    page.wait_for_selector(".stage[data-stage=beta] .result[data-kind=ok]")
    assert "promoted 0123abc to beta" in beta.locator(".result").text_content()
    assert commit_count(console.repo) == before + 1
    body = git(console.repo, "log", "-1", "--format=%B")
    assert body.startswith(f"promote(beta): {TAG}") and "first deploy to beta" in body
    done = console.audit_entries()[-1]
    assert done["action"] == "promotion.completed" and done["notes"] == "first deploy to beta"
    assert done["actor"] == "alice@example.com"
    # The page refreshes itself: tag, last promotion, and the audit history with every field.
    expect(beta.locator(".tag")).to_have_text(TAG)
    assert "first deploy to beta" in beta.locator(".last").text_content()
    beta.locator(".history summary").click()
    row = beta.locator("table.audit tr[data-action='promotion.completed']")
    row.wait_for()
    cells = row.locator("td").all_text_contents()
    assert cells[1] == "alice@example.com" and cells[5] == "first deploy to beta"
    assert cells[0] == done["time"] and cells[10] == done["hash"] and cells[8] == done["id"]
    assert json.loads(cells[7]) == done["details"]
    headers = beta.locator("table.audit th").all_text_contents()
    assert headers == [
        "time",
        "actor",
        "action",
        "from_stage",
        "tag",
        "notes",
        "justification",
        "details",
        "id",
        "prev",
        "hash",
    ]
    shot(page, "02-promoted-beta")


def test_a_blocked_paper_promotion_shows_the_reason(page, console):
    seed_beta(console)
    console.clock.set(MARKET_OPEN)  # 11:00 EDT on a full session
    reload(page)
    market = page.locator("#market")
    assert market.get_attribute("data-state") == "open"
    assert market.text_content().startswith("OPEN — promotions blocked, closes in")
    paper = card(page, "paper")
    assert paper.locator(".tag-input").input_value() == TAG
    head = commit_count(console.repo)
    paper.locator(".promote-button").click()
    page.wait_for_selector(".stage[data-stage=paper] .result[data-kind=blocked]")
    text = paper.locator(".result").text_content()
    assert "Blocked: paper ← 0123abc" in text
    assert "market is open until 16:00 America/New_York (closes in 5h)" in text
    assert paper.locator(".break-glass-open").is_visible()
    assert commit_count(console.repo) == head
    assert actions(console)[-1] == "promotion.blocked"
    shot(page, "03-paper-blocked")


def test_break_glass_refuses_without_the_typed_name_and_succeeds_once(page, console):
    seed_beta(console)
    console.clock.set(MARKET_OPEN)
    reload(page)
    paper = card(page, "paper")
    paper.locator(".promote-button").click()
    paper.locator(".break-glass-open").click()
    dialog = page.locator("#break-glass")
    assert dialog.is_visible()
    assert "market is open" in dialog.locator(".bg-why").text_content()
    page.fill("#bg-justification", "broker outage hotfix, desk lead approved")
    # Without the typed stage name: refused, nothing recorded.
    page.click("#bg-submit")
    assert "Type the stage name “paper”" in dialog.locator(".bg-error").text_content()
    page.fill("#bg-confirm", "Paper")
    page.click("#bg-submit")
    assert dialog.locator(".bg-error").is_visible()
    assert "break-glass.granted" not in actions(console)
    shot(page, "04-break-glass-refused")
    # The server refuses too when the page's check is bypassed.
    r = console.post_json(
        "/api/v1/break-glass",
        {"stage": "paper", "tag": TAG, "justification": "two words", "confirm": "live"},
    )
    assert r.status == 400 and "break-glass.granted" not in actions(console)
    before = commit_count(console.repo)
    page.fill("#bg-confirm", "paper")
    page.click("#bg-submit")
    page.wait_for_selector(".stage[data-stage=paper] .result[data-kind=ok]")
    assert not dialog.is_visible()
    assert "break-glass" in paper.locator(".result").text_content()
    assert commit_count(console.repo) == before + 1
    log = actions(console)
    assert log.count("break-glass.granted") == 1 and log.count("break-glass.consumed") == 1
    grant = next(e for e in console.audit_entries() if e["action"] == "break-glass.granted")
    assert grant["justification"] == "broker outage hotfix, desk lead approved"
    expect(paper.locator(".last")).to_contain_text(f"break-glass: {grant['id']}")
    shot(page, "05-break-glass-done")
    # Once: the grant is used up; another promotion of that tag (here Kargo's) is blocked.
    r = console.client().request(
        "GET",
        f"/api/v1/gate?stage=paper&tag={TAG}&promotion=paper.other.0123abc",
        headers={"Authorization": f"Bearer {KARGO_TOKEN}"},
    )
    assert r.json()["allowed"] is False
    assert actions(console).count("break-glass.consumed") == 1


def test_the_market_countdown_ticks_without_a_reload(page, console):
    console.clock.set(MARKET_OPEN)
    reload(page)
    market = page.locator("#market")
    assert market.text_content() == "OPEN — promotions blocked, closes in 5h"
    expect(market).to_have_text("OPEN — promotions blocked, closes in 4h 59m", timeout=5000)
    paper_line = card(page, "paper").locator(".stage-market").text_content()
    assert paper_line.startswith("OPEN — promotions blocked, closes in 4h 59m")


def test_half_day_is_shown(page, console):
    from datetime import UTC, datetime

    console.clock.set(datetime(2026, 11, 27, 16, 47, tzinfo=UTC))  # 11:47 EST, closes 13:00
    reload(page)
    text = page.locator("#market").text_content()
    assert re.match(r"OPEN — promotions blocked, closes in 1h 1[23]m \(half day, closes", text)


def test_stage_toggle_from_the_page(page, console):
    paper = card(page, "paper")
    before = commit_count(console.repo)
    paper.locator(".toggle").click()
    expect(paper.locator(".enabled-badge")).to_have_text("disabled")
    assert commit_count(console.repo) == before + 1
    assert actions(console)[-1] == "stage.disabled"
    assert card(page, "live").locator(".from-stage").text_content() == "beta"
    shot(page, "06-paper-disabled")


def test_recorded_text_is_shown_as_text_never_markup(page, console):
    ci_pass(console, TAG)
    evil = "<img src=x id=pwned onerror=\"document.title='pwned'\">"
    r = console.post_json("/api/v1/promote", {"stage": "beta", "tag": TAG, "notes": evil})
    assert r.status == 200
    reload(page)
    beta = card(page, "beta")
    beta.locator(".history summary").click()
    beta.locator("table.audit tr[data-action='promotion.completed']").wait_for()
    assert evil in beta.locator(".last").text_content()
    assert page.locator("#pwned").count() == 0 and page.title() != "pwned"


def test_a_kargo_link_prefills_the_blocked_tag(page, console):
    seed_beta(console)
    page.goto(f"{console.url}/?break-glass={TAG}#stage-paper-history")
    page.wait_for_selector(".stage[data-stage=paper] .result[data-kind=blocked]")
    paper = card(page, "paper")
    assert paper.locator(".tag-input").input_value() == TAG
    assert paper.locator(".history").get_attribute("open") is not None

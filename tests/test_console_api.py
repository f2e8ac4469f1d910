"""The console's JSON API against a real server on 127.0.0.1, a real Git repository and a
real audit log; the market state follows the server's injected clock."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _console import (
    CI_TOKEN,
    KARGO_TOKEN,
    MARKET_CLOSED,
    MARKET_OPEN,
    commit_count,
    head_commit,
    start_console,
)
from _gitfix import git
from pipectl.errors import BadInput

STAGES = ["ci", "integration-test", "beta", "paper", "live"]
TAG = "0123abc"


@pytest.fixture
def console(tmp_path):
    with start_console(tmp_path) as c:
        yield c


def ci_post(console, body, *, raw: bytes | None = None, ctype="application/json"):
    headers = {"Authorization": f"Bearer {CI_TOKEN}", "Content-Type": ctype}
    data = raw if raw is not None else json.dumps(body).encode()
    return console.client().request("POST", "/api/v1/inttest", headers=headers, body=data)


# --- status ------------------------------------------------------------------------------------


def test_status_lists_the_five_stages_in_order_with_market_and_verify(console):
    r = console.get("/api/v1/status")
    assert r.status == 200
    doc = r.json()
    assert [s["name"] for s in doc["stages"]] == STAGES
    by = {s["name"]: s for s in doc["stages"]}
    assert by["paper"]["gates"]["market_hours"] and by["live"]["gates"]["approval"]
    assert by["beta"]["from_stage"] == "integration-test" and by["live"]["from_stage"] == "paper"
    assert [s["deploys"] for s in doc["stages"]] == [False, False, True, True, True]
    m = doc["market"]
    assert m["open"] is False and m["timezone"] == "America/New_York"
    assert m["next_open"] == "2026-08-14T09:30:00-04:00"
    assert m["seconds_to_open"] == 16 * 3600 + 30 * 60
    assert m["message"].startswith("CLOSED — promotions allowed, next open 2026-08-14T09:30")
    assert doc["audit_verify"]["ok"] is True and doc["audit_verify"]["entries"] == 0
    assert doc["mode"] == "local" and doc["now"] == "2026-08-13T21:00:00+00:00"


@pytest.mark.parametrize(
    ("now", "open_", "message", "half"),
    [
        (MARKET_OPEN, True, "OPEN — promotions blocked, closes in 5h", False),
        # Day after Thanksgiving 2026: a 13:00 half day (EST, UTC-5): 11:47 -> 1h 13m left.
        (datetime(2026, 11, 27, 16, 47, tzinfo=UTC), True, "closes in 1h 13m", True),
        (datetime(2026, 11, 27, 18, 0, tzinfo=UTC), False, "next open 2026-11-30T09:30", False),
        # The evening before a half day: the indicator says the next session is short.
        (datetime(2026, 12, 23, 22, 0, tzinfo=UTC), False, "next open 2026-12-24T09:30", False),
    ],
)
def test_status_market_line_follows_the_clock_and_half_days(console, now, open_, message, half):
    console.clock.set(now)
    m = console.get("/api/v1/status").json()["market"]
    assert m["open"] is open_
    assert message in m["message"]
    assert m["half_day"] is half
    if now.date().isoformat() == "2026-12-23":
        assert m["next_half_day"] is True
        assert m["next_close"] == "2026-12-24T13:00:00-05:00"


def test_status_rejects_query_parameters(console):
    r = console.get("/api/v1/status?verbose=1")
    assert r.status == 400 and "verbose" in r.json()["error"]


# --- stages ------------------------------------------------------------------------------------


def test_stages_lists_config(console):
    doc = console.get("/api/v1/stages").json()
    assert [s["name"] for s in doc["stages"]] == STAGES
    live = doc["stages"][-1]
    assert live == {
        "name": "live",
        "enabled": True,
        "namespace": "stonks-oracle",
        "values": "apps/stonks-oracle/live/values.yaml",
        "gates": {"market_hours": True, "approval": True, "integration_test": False},
    }


def test_stage_toggle_commits_audits_and_is_seen_at_once(console):
    before = commit_count(console.repo)
    r = console.post_json("/api/v1/stages/paper", {"enabled": False})
    assert r.status == 200, r.body
    change = r.json()
    assert change["status"] == "changed" and change["enabled"] is False
    assert commit_count(console.repo) == before + 1
    assert change["commit"] == head_commit(console.repo)
    subject = git(console.repo, "log", "-1", "--format=%s%n%b")
    assert subject.startswith("stages(paper): disable")
    assert "Changed-By: alice@example.com" in subject
    entry = console.audit_entries()[-1]
    assert entry["action"] == "stage.disabled" and entry["actor"] == "alice@example.com"
    assert entry["stage"] == "paper" and entry["details"]["commit"] == change["commit"]
    stages = {s["name"]: s for s in console.get("/api/v1/stages").json()["stages"]}
    assert stages["paper"]["enabled"] is False  # the config cache saw the new file
    status = {s["name"]: s for s in console.get("/api/v1/status").json()["stages"]}
    assert status["live"]["from_stage"] == "beta"  # paper is skipped now
    again = console.post_json("/api/v1/stages/paper", {"enabled": False})
    assert again.status == 200 and again.json()["status"] == "noop"
    assert commit_count(console.repo) == before + 1
    back = console.post_json("/api/v1/stages/paper", {"enabled": True})
    assert back.status == 200 and back.json()["status"] == "changed"


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/api/v1/stages/paper", {"enabled": "false"}, 400, "true or false"),
        ("/api/v1/stages/paper", {}, 400, "true or false"),
        ("/api/v1/stages/paper", {"enabled": False, "force": True}, 400, "unexpected field"),
        ("/api/v1/stages/staging", {"enabled": False}, 400, "unknown stage"),
        ("/api/v1/stages/paper", [False], 400, "JSON object"),
    ],
)
def test_stage_toggle_bad_input_changes_nothing(console, path, body, status, needle):
    before_log, before_head = console.audit_bytes(), head_commit(console.repo)
    r = console.post_json(path, body)
    assert r.status == status and needle in r.json()["error"]
    assert console.audit_bytes() == before_log and head_commit(console.repo) == before_head


def test_stage_toggle_needs_json_content_type(console):
    headers = {**console.user_headers(), "Content-Type": "text/plain"}
    r = console.client().request(
        "POST", "/api/v1/stages/paper", headers=headers, body=b'{"enabled": false}'
    )
    assert r.status == 415


# --- integration-test results from CI ----------------------------------------------------------


def test_inttest_records_pass_and_fail(console):
    r = ci_post(console, {"tag": TAG, "exit_code": 0, "results": {"passed": 12, "skipped": 1}})
    assert r.status == 201, r.body
    doc = r.json()
    assert doc["passed"] is True and doc["action"] == "inttest.passed"
    assert doc["counts"] == {"passed": 12, "failed": 0, "errors": 0, "skipped": 1, "total": 13}
    entry = console.audit_entries()[-1]
    assert entry["id"] == doc["recorded"] and entry["actor"] == "token:ci"
    assert entry["stage"] == "integration-test" and entry["tag"] == TAG
    assert entry["details"]["source"] == "api"
    r = ci_post(
        console,
        {"tag": "fedcba9", "results": {"summary": {"passed": 3, "failed": 1}, "exit_code": 1}},
    )
    assert r.status == 201 and r.json()["passed"] is False
    assert console.audit_entries()[-1]["action"] == "inttest.failed"
    status = {s["name"]: s for s in console.get("/api/v1/status").json()["stages"]}
    assert status["integration-test"]["last_passed"]["tag"] == TAG
    assert status["beta"]["candidate_tag"] == TAG


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"tag": "ABCDEF1", "exit_code": 0, "results": {"passed": 1}}, "not a git SHA"),
        ({"tag": "abc", "exit_code": 0, "results": {"passed": 1}}, "not a git SHA"),
        ({"exit_code": 0, "results": {"passed": 1}}, "not a git SHA"),
        ({"tag": TAG, "exit_code": 0}, "'results' is required"),
        ({"tag": TAG, "exit_code": 0, "results": {"failed": 0}}, "missing count passed"),
        ({"tag": TAG, "exit_code": 0, "results": {"passed": 2, "total": 3}}, "total is 3"),
        ({"tag": TAG, "exit_code": 0, "results": {"passed": -1}}, "non-negative"),
        ({"tag": TAG, "exit_code": "0", "results": {"passed": 1}}, "not an integer"),
        ({"tag": TAG, "exit_code": 0, "results": {"passed": 1, "exit_code": 2}}, "disagrees"),
        ({"tag": TAG, "results": {"passed": 1}}, "no exit code"),
        ({"tag": TAG, "exit_code": 0, "results": [1]}, "JSON object"),
        ({"tag": TAG, "exit_code": 0, "results": {"passed": 1}, "x": 1}, "unexpected field"),
    ],
)
def test_inttest_malformed_is_400_and_writes_nothing(console, body, needle):
    before = console.audit_bytes()
    r = ci_post(console, body)
    assert r.status == 400, r.body
    assert needle in r.json()["error"]
    assert console.audit_bytes() == before


@pytest.mark.parametrize(
    ("raw", "ctype", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        (b'"a string"', "application/json", 400),
        (b'{"tag": "0123abc", "exit_code": 0, "results": {"passed": 1}}', "text/plain", 415),
        (b"", "application/json", 400),
    ],
)
def test_inttest_unreadable_bodies(console, raw, ctype, status):
    before = console.audit_bytes()
    r = ci_post(console, None, raw=raw, ctype=ctype)
    assert r.status == status
    assert console.audit_bytes() == before


# --- audit -------------------------------------------------------------------------------------


def test_audit_filters_by_stage_limits_and_verifies(console):
    for tag in ("1111111", "2222222", "3333333"):
        assert (
            ci_post(console, {"tag": tag, "exit_code": 0, "results": {"passed": 1}}).status == 201
        )
    assert console.post_json("/api/v1/stages/live", {"enabled": False}).status == 200
    doc = console.get("/api/v1/audit").json()
    assert doc["total"] == 4 and doc["verify"]["ok"] and doc["verify"]["entries"] == 4
    fields = {"id", "time", "actor", "action", "stage", "from_stage", "tag", "notes",
              "justification", "details", "prev", "hash"}  # fmt: skip
    assert all(set(e) == fields for e in doc["entries"])
    live = console.get("/api/v1/audit?stage=live").json()
    assert [e["action"] for e in live["entries"]] == ["stage.disabled"]
    last2 = console.get("/api/v1/audit?stage=integration-test&limit=2").json()
    assert [e["tag"] for e in last2["entries"]] == ["2222222", "3333333"]
    assert last2["truncated"] is True and last2["total"] == 3


@pytest.mark.parametrize(
    "query",
    [
        "stage=staging",
        "limit=0",
        "limit=x",
        "limit=-1",
        "limit=%C2%B2",  # '²'.isdigit() is True, int('²') fails
        "limit=%D9%A3",  # Arabic-Indic three: int() would take it
        "stage=live&stage=paper",
        "foo=1",
    ],
)
def test_audit_bad_query_is_400(console, query):
    r = console.get(f"/api/v1/audit?{query}")
    assert r.status == 400 and r.json()["error"]


def test_audit_verify_reports_an_edited_entry(console):
    for tag in ("1111111", "2222222"):
        ci_post(console, {"tag": tag, "exit_code": 0, "results": {"passed": 1}})
    assert console.get("/api/v1/audit").json()["verify"]["ok"] is True
    lines = console.audit_path.read_bytes().splitlines(keepends=True)
    lines[0] = lines[0].replace(b'"passed":1', b'"passed":9')
    console.audit_path.write_bytes(b"".join(lines))
    v = console.get("/api/v1/audit").json()["verify"]
    assert v["ok"] is False and v["bad_line"] == 1 and "edited" in v["reason"]
    assert console.get("/api/v1/status").json()["audit_verify"]["ok"] is False


# --- integration-test results read back (Kargo's integration-test Stage waits on them) ----------


def inttest_get(console, query: str, headers: dict[str, str] | None = None):
    headers = {"Authorization": f"Bearer {KARGO_TOKEN}"} if headers is None else headers
    return console.client().request("GET", f"/api/v1/inttest?{query}", headers=headers)


def test_the_kargo_token_may_only_ask_the_gate_and_read_inttest_results():
    from pipectl.console.auth import CI, KARGO
    from pipectl.console.server import ROUTES

    def admitted(kind):
        return {
            (r.method, r.pattern.pattern.removesuffix("\\Z")) for r in ROUTES if kind in r.scopes
        }

    assert admitted(KARGO) == {("GET", "/api/v1/gate"), ("GET", "/api/v1/inttest")}
    assert admitted(CI) == {("POST", "/api/v1/inttest"), ("GET", "/api/v1/stages")}


def test_inttest_result_is_readable_by_kargo_and_users_not_by_ci(console):
    ci_post(console, {"tag": TAG, "exit_code": 0, "results": {"passed": 2}})
    before = console.audit_bytes()
    for headers in ({"Authorization": f"Bearer {KARGO_TOKEN}"}, console.user_headers()):
        r = inttest_get(console, f"tag={TAG}", headers)
        assert r.status == 200, r.body
        assert r.json()["result"] == "passed"
    ci = inttest_get(console, f"tag={TAG}", {"Authorization": f"Bearer {CI_TOKEN}"})
    assert ci.status == 403 and "ci token may not use" in ci.json()["error"]
    anonymous = inttest_get(console, f"tag={TAG}", {})
    assert anonymous.status == 401
    wrong = inttest_get(console, f"tag={TAG}", {"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status == 401
    assert console.audit_bytes() == before  # reading never writes


def test_inttest_result_unknown_then_failed_then_passed_latest_wins(console):
    unknown = inttest_get(console, f"tag={TAG}")
    assert unknown.status == 200
    assert unknown.json() == {"tag": TAG, "result": None, "entry": None}
    assert console.audit_bytes() == b""

    failed = {"tag": TAG, "exit_code": 1, "results": {"passed": 4, "failed": 1}}
    assert ci_post(console, failed).status == 201
    doc = inttest_get(console, f"tag={TAG}").json()
    recorded = console.audit_entries()[-1]
    assert doc["tag"] == TAG and doc["result"] == "failed"
    assert doc["entry"] == {
        "id": recorded["id"],
        "time": recorded["time"],
        "actor": "token:ci",
        "action": "inttest.failed",
        "details": {
            "passed": 4,
            "failed": 1,
            "errors": 0,
            "skipped": 0,
            "total": 5,
            "exit_code": 1,
            "source": "api",
        },
    }

    assert ci_post(console, {"tag": TAG, "exit_code": 0, "results": {"passed": 5}}).status == 201
    doc = inttest_get(console, f"tag={TAG}").json()
    assert doc["result"] == "passed" and doc["entry"]["action"] == "inttest.passed"
    assert doc["entry"]["id"] == console.audit_entries()[-1]["id"]

    # Later entries for other tags, and other actions for this tag, change nothing.
    other = {"tag": "fedcba9", "exit_code": 1, "results": {"passed": 0, "failed": 3}}
    assert ci_post(console, other).status == 201
    gate = kargo_gate(console, f"stage=integration-test&tag={TAG}")
    assert gate.status == 200
    assert console.audit_entries()[-1]["action"].startswith("gate.")
    doc = inttest_get(console, f"tag={TAG}").json()
    assert doc["result"] == "passed" and doc["entry"]["action"] == "inttest.passed"
    assert inttest_get(console, "tag=fedcba9").json()["result"] == "failed"

    # A rerun that fails after a pass: the newest run wins again.
    assert ci_post(console, failed).status == 201
    assert inttest_get(console, f"tag={TAG}").json()["result"] == "failed"


def test_inttest_result_of_a_full_sha_is_not_its_prefix(console):
    full = "0123abc" + "0" * 33
    assert ci_post(console, {"tag": full, "exit_code": 0, "results": {"passed": 1}}).status == 201
    assert inttest_get(console, f"tag={full}").json()["result"] == "passed"
    assert inttest_get(console, f"tag={TAG}").json()["result"] is None


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("", "'tag' is required"),
        ("tag=", "'tag' is required"),
        ("tag=ABCDEF1", "not a git SHA"),
        ("tag=abc12", "not a git SHA"),
        ("tag=" + "a" * 41, "not a git SHA"),
        ("tag=0123abc%0A", "not a git SHA"),
        ("tag=0123abz", "not a git SHA"),
        (f"tag={TAG}&tag={TAG}", "more than once"),
        (f"tag={TAG}&stage=beta", "unexpected query parameter(s): stage"),
    ],
)
def test_inttest_result_malformed_question_is_400_and_writes_nothing(console, query, needle):
    ci_post(console, {"tag": TAG, "exit_code": 0, "results": {"passed": 1}})
    before = console.audit_bytes()
    r = inttest_get(console, query)
    assert r.status == 400, r.body
    assert needle in r.json()["error"]
    assert console.audit_bytes() == before


def test_inttest_result_from_a_damaged_audit_log_is_500(console):
    ci_post(console, {"tag": TAG, "exit_code": 0, "results": {"passed": 1}})
    with console.audit_path.open("ab") as f:
        f.write(b"this is not an audit entry\n")
    r = inttest_get(console, f"tag={TAG}")
    assert r.status == 500 and "audit log line 2" in r.json()["error"]


# --- the gate Kargo calls ----------------------------------------------------------------------


def test_a_damaged_audit_log_fails_closed(console):
    ci_post(console, {"tag": TAG, "exit_code": 0, "results": {"passed": 1}})
    with console.audit_path.open("ab") as f:
        f.write(b"this is not an audit entry\n")
    status = console.get("/api/v1/status")
    assert status.status == 500 and "audit log line 2" in status.json()["error"]
    audit = console.get("/api/v1/audit").json()
    assert audit["verify"]["ok"] is False and audit["verify"]["bad_line"] == 2
    assert "audit log line 2" in audit["error"]
    gate = kargo_gate(console, f"stage=beta&tag={TAG}")
    assert gate.status == 200 and gate.json()["allowed"] is False
    assert gate.json()["reasons"][0].startswith("internal error:")


def kargo_gate(console, query: str, token: str = KARGO_TOKEN):
    return console.client().request(
        "GET", f"/api/v1/gate?{query}", headers={"Authorization": f"Bearer {token}"}
    )


def seed_beta(console, tag: str = TAG) -> None:
    """`tag` passed its integration test and runs in beta (promoted while the market is
    closed, through the API)."""
    saved = console.clock()
    console.clock.set(MARKET_CLOSED)
    assert ci_post(console, {"tag": tag, "exit_code": 0, "results": {"passed": 5}}).status == 201
    r = console.post_json("/api/v1/promote", {"stage": "beta", "tag": tag, "notes": "to beta"})
    assert r.status == 200 and r.json()["status"] == "completed", r.body
    console.clock.set(saved)


def test_gate_allowed_when_the_market_is_closed_and_audited_with_kargo_names(console):
    seed_beta(console)
    r = kargo_gate(console, f"stage=paper&tag={TAG}&promotion=paper.01jabc.0123abc&actor=admin")
    assert r.status == 200, r.body
    doc = r.json()
    assert {k: doc[k] for k in ("allowed", "stage", "tag", "market_open", "break_glass")} == {
        "allowed": True,
        "stage": "paper",
        "tag": TAG,
        "market_open": False,
        "break_glass": None,
    }
    assert doc["reasons"] == [] and doc["seconds_to_close"] is None
    assert doc["message"].startswith(f"allowed: {TAG} may go to paper")
    assert doc["links"] == []  # no --public-url: no absolute links to give
    entry = console.audit_entries()[-1]
    assert entry["action"] == "gate.allowed" and entry["actor"] == "kargo:admin"
    assert entry["details"]["promotion"] == "paper.01jabc.0123abc"
    assert entry["details"]["source"] == "kargo"


def test_gate_blocked_while_open_with_message_and_links(tmp_path):
    url = "https://pipeline.celestium.life"
    with start_console(tmp_path, public_url=url) as console:
        seed_beta(console)
        console.clock.set(datetime(2026, 8, 13, 17, 47, tzinfo=UTC))  # 13:47 EDT
        r = kargo_gate(console, f"stage=paper&tag={TAG}&promotion=paper.x.0123abc&actor=admin")
        assert r.status == 200
        doc = r.json()
        assert doc["allowed"] is False and doc["market_open"] is True
        assert doc["seconds_to_close"] == 2 * 3600 + 13 * 60
        assert "closes in 2h 13m" in doc["message"] and doc["message"].startswith("blocked:")
        assert any("market is open" in reason for reason in doc["reasons"])
        assert doc["links"][0] == {
            "title": "Pipeline console: paper",
            "url": f"{url}/#stage-paper",
        }
        assert any("Break-glass" in link["title"] for link in doc["links"])
        entry = console.audit_entries()[-1]
        assert entry["action"] == "gate.blocked" and entry["details"]["reasons"] == doc["reasons"]


def test_gate_for_a_disabled_stage_is_a_blocked_decision(console):
    seed_beta(console)
    assert console.post_json("/api/v1/stages/paper", {"enabled": False}).status == 200
    r = kargo_gate(console, f"stage=paper&tag={TAG}")
    assert r.status == 200 and r.json()["allowed"] is False
    assert "stage paper is disabled" in r.json()["reasons"]
    assert console.audit_entries()[-1]["actor"] == "token:kargo"  # no actor given


def test_gate_as_a_user_records_the_user(console):
    seed_beta(console)
    r = console.get(f"/api/v1/gate?stage=paper&tag={TAG}&actor=someone-else")
    assert r.status == 200 and r.json()["allowed"] is True
    entry = console.audit_entries()[-1]
    assert entry["actor"] == "alice@example.com" and entry["details"]["source"] == "console"


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("", "'stage' is required"),
        (f"tag={TAG}", "'stage' is required"),
        ("stage=paper", "'tag' is required"),
        (f"stage=staging&tag={TAG}", "unknown stage"),
        ("stage=paper&tag=0123ABC", "not a git SHA"),
        ("stage=paper&tag=012", "not a git SHA"),
        ("stage=paper&tag=0123abc%0a", "not a git SHA"),
        (f"stage=paper&tag={'a' * 41}", "not a git SHA"),
        (f"stage=paper&stage=live&tag={TAG}", "more than once"),
        (f"stage=paper&tag={TAG}&at=2026-01-01T00:00:00Z", "unexpected query parameter"),
        (f"stage=paper&tag={TAG}&promotion=Not_A_Name", "Kubernetes object name"),
        (f"stage=paper&tag={TAG}&actor={'x' * 300}", "at most 256"),
        (f"stage=paper&tag={TAG}&actor=a%00b", "printable"),
        ("stage=%ff&tag=0123abc", "malformed query"),
    ],
)
def test_gate_malformed_parameters_are_400_and_write_nothing(console, query, needle):
    seed_beta(console)
    before = console.audit_bytes()
    r = kargo_gate(console, query)
    assert r.status == 400, r.body
    assert needle in r.json()["error"]
    assert console.audit_bytes() == before


def test_kargo_gate_consumes_a_break_glass_grant_exactly_once(console):
    from pipectl import breakglass

    seed_beta(console)
    console.clock.set(MARKET_OPEN)
    # An operator breaks glass (as `pipectl break-glass` does) for the Kargo promotion.
    grant = breakglass.grant_break_glass(
        console.api.audit_log, console.api.config(), "paper", TAG, "broker outage fix", "bob"
    )
    first = kargo_gate(console, f"stage=paper&tag={TAG}&promotion=paper.p1.0123abc&actor=bob")
    doc = first.json()
    assert doc["allowed"] is True and doc["break_glass"] == grant.id
    consumed = [e for e in console.audit_entries() if e["action"] == "break-glass.consumed"]
    assert len(consumed) == 1 and consumed[0]["details"]["grant"] == grant.id
    assert consumed[0]["details"]["promotion"] == "paper.p1.0123abc"
    # Kargo retries the same promotion's step: same answer, no second consumption.
    retry = kargo_gate(console, f"stage=paper&tag={TAG}&promotion=paper.p1.0123abc&actor=bob")
    assert retry.json()["allowed"] is True
    # Any other promotion of the same tag is blocked again: the grant is used up.
    other = kargo_gate(console, f"stage=paper&tag={TAG}&promotion=paper.p2.0123abc&actor=bob")
    assert other.json()["allowed"] is False and other.json()["break_glass"] is None
    consumed = [e for e in console.audit_entries() if e["action"] == "break-glass.consumed"]
    assert len(consumed) == 1
    assert console.get("/api/v1/audit").json()["verify"]["ok"] is True


@pytest.mark.parametrize(
    "extra",
    [
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},  # <img src=...>
        {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate"},
        {"Origin": "https://evil.example"},
    ],
)
def test_cross_site_gate_call_with_ambient_credentials_records_nothing(console, extra):
    """The gate records and consumes grants on GET: a page elsewhere must not make a signed-in
    browser (cookie, cached Basic, proxy cookie) spend an operator's break-glass grant."""
    from pipectl import breakglass

    seed_beta(console)
    console.clock.set(MARKET_OPEN)
    grant = breakglass.grant_break_glass(
        console.api.audit_log, console.api.config(), "paper", TAG, "broker outage fix", "bob"
    )
    cookie, _ = console.login()
    before = console.audit_bytes()
    query = f"/api/v1/gate?stage=paper&tag={TAG}&promotion=evil"
    r = console.client().request("GET", query, headers={"Cookie": cookie, **extra})
    assert r.status == 403, r.body
    assert console.audit_bytes() == before
    # Typed into the address bar (Sec-Fetch-Site: none) or same-origin: the user's own call.
    ok = console.client().request(
        "GET", query, headers={"Cookie": cookie, "Sec-Fetch-Site": "none"}
    )
    assert ok.status == 200 and ok.json()["break_glass"] == grant.id


def test_concurrent_gate_calls_consume_a_grant_once(console):
    import concurrent.futures

    from pipectl import breakglass

    seed_beta(console)
    console.clock.set(MARKET_OPEN)
    breakglass.grant_break_glass(
        console.api.audit_log, console.api.config(), "paper", TAG, "broker outage fix", "bob"
    )

    def ask(i: int) -> bool:
        r = kargo_gate(console, f"stage=paper&tag={TAG}&promotion=paper.c{i}.0123abc")
        return r.json()["allowed"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(16)))
    assert answers.count(True) == 1
    consumed = [e for e in console.audit_entries() if e["action"] == "break-glass.consumed"]
    assert len(consumed) == 1


# --- promote and break-glass from the console --------------------------------------------------


def test_promote_with_notes_commits_and_audits(console):
    seed_beta(console)
    r = console.post_json("/api/v1/promote", {"stage": "paper", "tag": TAG, "notes": "ok <b>"})
    assert r.status == 200, r.body
    doc = r.json()
    assert doc["status"] == "completed" and doc["from_stage"] == "beta"
    assert doc["commit"] == head_commit(console.repo)
    message = git(console.repo, "log", "-1", "--format=%B")
    assert message.startswith(f"promote(paper): {TAG}")
    assert "ok <b>" in message and "Promoted-By: alice@example.com" in message
    assert "Break-Glass: none" in message
    values = (console.repo / "apps/stonks-oracle/paper/values.yaml").read_text()
    assert TAG in values
    done = console.audit_entries()[-1]
    assert done["action"] == "promotion.completed" and done["notes"] == "ok <b>"
    assert done["details"]["commit"] == doc["commit"] and done["actor"] == "alice@example.com"
    status = {s["name"]: s for s in console.get("/api/v1/status").json()["stages"]}
    assert status["paper"]["tag"] == TAG
    assert status["paper"]["last_promotion"]["notes"] == "ok <b>"
    again = console.post_json("/api/v1/promote", {"stage": "paper", "tag": TAG})
    assert again.status == 200 and again.json()["status"] == "noop"


def test_blocked_promotion_says_why_and_offers_break_glass(console):
    seed_beta(console)
    console.clock.set(MARKET_OPEN)
    head = head_commit(console.repo)
    r = console.post_json("/api/v1/promote", {"stage": "paper", "tag": TAG, "notes": ""})
    assert r.status == 409
    doc = r.json()
    assert doc["blocked"] is True and doc["break_glass_possible"] is True
    assert any("market is open" in x for x in doc["reasons"])
    assert head_commit(console.repo) == head
    assert console.audit_entries()[-1]["action"] == "promotion.blocked"
    # A tag beta does not run is blocked for a reason break-glass cannot lift.
    other = console.post_json("/api/v1/promote", {"stage": "paper", "tag": "fedcba9"})
    assert other.status == 409 and other.json()["break_glass_possible"] is False


def test_break_glass_needs_the_typed_stage_name_and_a_justification(console):
    seed_beta(console)
    console.clock.set(MARKET_OPEN)
    before_log, before_head = console.audit_bytes(), head_commit(console.repo)
    base = {"stage": "paper", "tag": TAG, "justification": "broker outage hotfix"}
    for body, needle in (
        (base, "type the stage name 'paper'"),
        ({**base, "confirm": "Paper"}, "type the stage name"),
        ({**base, "confirm": "live"}, "type the stage name"),
        ({**base, "confirm": "paper", "justification": ""}, "'justification' is required"),
        ({**base, "confirm": "paper", "justification": "because"}, "one word"),
        ({**base, "confirm": "beta", "stage": "beta"}, "no market-hours gate"),
    ):
        r = console.post_json("/api/v1/break-glass", body)
        assert r.status == 400, (body, r.body)
        assert needle in r.json()["error"]
    assert console.audit_bytes() == before_log and head_commit(console.repo) == before_head
    ok = console.post_json("/api/v1/break-glass", {**base, "confirm": "paper"})
    assert ok.status == 200, ok.body
    doc = ok.json()
    assert doc["status"] == "completed" and doc["break_glass"]
    assert f"Break-Glass: {doc['break_glass']}" in git(console.repo, "log", "-1", "--format=%B")
    actions = [e["action"] for e in console.audit_entries()]
    assert actions.count("break-glass.granted") == 1 and actions.count("break-glass.consumed") == 1
    granted = next(e for e in console.audit_entries() if e["action"] == "break-glass.granted")
    assert granted["justification"] == "broker outage hotfix"
    assert granted["actor"] == "alice@example.com"
    # Once: paper runs the tag now; a second break-glass is refused and grants nothing.
    again = console.post_json("/api/v1/break-glass", {**base, "confirm": "paper"})
    assert again.status == 409 and "already runs" in again.json()["error"]
    assert [e["action"] for e in console.audit_entries()].count("break-glass.granted") == 1


def test_break_glass_is_refused_when_it_would_not_help(console):
    seed_beta(console)
    body = {"stage": "paper", "tag": TAG, "justification": "market hotfix now", "confirm": "paper"}
    closed = console.post_json("/api/v1/break-glass", body)  # market closed: not needed
    assert closed.status == 409 and "without break-glass" in closed.json()["error"]
    console.clock.set(MARKET_OPEN)
    wrong = console.post_json("/api/v1/break-glass", {**body, "tag": "fedcba9"})
    assert wrong.status == 409 and wrong.json()["break_glass_possible"] is False
    assert "not what beta runs" in wrong.json()["error"]
    assert not [e for e in console.audit_entries() if e["action"] == "break-glass.granted"]


def test_live_needs_notes_which_become_the_approval(console):
    seed_beta(console)
    assert console.post_json("/api/v1/promote", {"stage": "paper", "tag": TAG}).status == 200
    before = console.audit_bytes()
    r = console.post_json("/api/v1/promote", {"stage": "live", "tag": TAG, "notes": "  "})
    assert r.status == 400 and "needs notes" in r.json()["error"]
    assert console.audit_bytes() == before
    r = console.post_json("/api/v1/promote", {"stage": "live", "tag": TAG, "notes": "LGTM, P&L ok"})
    assert r.status == 200 and r.json()["status"] == "completed", r.body
    entries = console.audit_entries()
    actions = [e["action"] for e in entries]
    assert actions[-3:] == ["approval.granted", "promotion.requested", "promotion.completed"]
    assert entries[-3]["notes"] == "LGTM, P&L ok" and entries[-3]["stage"] == "live"
    assert entries[-3]["actor"] == "alice@example.com"


def test_live_break_glass_records_approval_and_grant_then_promotes(console):
    seed_beta(console)
    assert console.post_json("/api/v1/promote", {"stage": "paper", "tag": TAG}).status == 200
    console.clock.set(MARKET_OPEN)
    body = {"stage": "live", "tag": TAG, "justification": "urgent fix", "confirm": "live"}
    r = console.post_json("/api/v1/break-glass", body)
    assert r.status == 400 and "needs notes" in r.json()["error"]
    r = console.post_json("/api/v1/break-glass", {**body, "notes": "approved by desk"})
    assert r.status == 200 and r.json()["status"] == "completed", r.body
    actions = [e["action"] for e in console.audit_entries()]
    assert actions[-5:] == [
        "approval.granted",
        "break-glass.granted",
        "promotion.requested",
        "break-glass.consumed",
        "promotion.completed",
    ]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"stage": "ci", "tag": TAG}, "does not deploy"),
        ({"stage": "integration-test", "tag": TAG}, "does not deploy"),
        ({"stage": "prod", "tag": TAG}, "unknown stage"),
        ({"tag": TAG}, "'stage' is required"),
        ({"stage": "paper"}, "'tag' is required"),
        ({"stage": "paper", "tag": "xyz1234"}, "7 to 40 lower-case hex"),
        ({"stage": "paper", "tag": TAG, "notes": 5}, "must be a string"),
        ({"stage": "paper", "tag": TAG, "notes": "x" * 4001}, "longer than 4000"),
        ({"stage": "paper", "tag": TAG, "push": True}, "unexpected field"),
    ],
)
def test_promote_bad_input_is_400_and_writes_nothing(console, body, needle):
    seed_beta(console)
    before_log, before_head = console.audit_bytes(), head_commit(console.repo)
    r = console.post_json("/api/v1/promote", body)
    assert r.status == 400, r.body
    assert needle in r.json()["error"]
    assert console.audit_bytes() == before_log and head_commit(console.repo) == before_head


def test_promotion_conflict_with_a_dirty_values_file_is_409(console):
    seed_beta(console)
    values = console.repo / "apps/stonks-oracle/paper/values.yaml"
    values.write_text(values.read_text() + "# local edit\n")
    r = console.post_json("/api/v1/promote", {"stage": "paper", "tag": TAG})
    assert r.status == 409 and "uncommitted changes" in r.json()["error"]


# --- cluster mode: Kargo Promotions through the kubernetes client (recorded responses) ---------

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROMOTION_NAME = "paper.01kb7v3y6q9c2m8x4t1r5n0w7e.0a1b2c3"  # what Kargo's webhook named it
FREIGHT = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"


def _fixture(rel: str) -> dict:
    return json.loads((FIXTURES / rel).read_text())


@pytest.fixture
def kube(mocker):
    """A CustomObjectsApi answering from recorded API objects (tests/fixtures)."""
    from kubernetes.client.exceptions import ApiException

    api = mocker.Mock(name="CustomObjectsApi")

    def get(group, version, namespace, plural, name):
        if plural == "stages" and namespace == "kargo-stonks-oracle":
            if name == "paper":
                return _fixture("console/kargo-stage-paper.json")
            path = FIXTURES / "cluster" / f"kargo-stage-{name}.json"
        elif plural == "applications" and namespace == "argocd":
            path = FIXTURES / "cluster" / f"argocd-application-{name[len('stonks-oracle-') :]}.json"
        else:
            path = None
        if path is None or not path.exists():
            raise ApiException(status=404, reason="Not Found")
        return json.loads(path.read_text())

    api.get_namespaced_custom_object.side_effect = get
    api.list_namespaced_custom_object.return_value = _fixture("console/kargo-freights.json")
    api.create_namespaced_custom_object.return_value = _fixture(
        "console/kargo-promotion-created.json"
    )
    return api


@pytest.fixture
def cluster_console(tmp_path, kube):
    from _console import console_repo
    from _gitfix import add_bare_remote
    from pipectl.console.kargo import KargoBackend

    repo = console_repo(tmp_path / "clone")
    add_bare_remote(repo, tmp_path / "remote.git")
    with start_console(
        tmp_path, mode="cluster", cluster=KargoBackend(kube), repo=repo, push=True
    ) as c:
        c.api.pull_interval = 0  # pull before every read in these tests
        yield c


def test_cluster_status_shows_argocd_and_kargo(cluster_console):
    doc = cluster_console.get("/api/v1/status").json()
    by = {s["name"]: s for s in doc["stages"]}
    assert doc["mode"] == "cluster" and doc["cluster_error"] is None
    assert by["paper"]["argocd"]["sync"] and by["paper"]["argocd"]["health"] == "Progressing"
    assert by["paper"]["cluster"]["kargo"]["tag"] == "9f8e7d6"
    assert by["live"]["argocd"] is None  # no Application recorded for live


def test_cluster_promote_creates_a_kargo_promotion(cluster_console, kube):
    c = cluster_console
    head = head_commit(c.repo)
    r = c.post_json("/api/v1/promote", {"stage": "paper", "tag": TAG, "notes": "via Kargo"})
    assert r.status == 202, r.body
    doc = r.json()
    assert doc["promotion"] == PROMOTION_NAME and doc["freight"] == FREIGHT
    (group, version, namespace, plural, body), _ = kube.create_namespaced_custom_object.call_args
    assert (group, version, namespace, plural) == (
        "kargo.akuity.io",
        "v1alpha1",
        "kargo-stonks-oracle",
        "promotions",
    )
    stage = _fixture("console/kargo-stage-paper.json")
    assert body["kind"] == "Promotion" and body["spec"]["stage"] == "paper"
    # The Warehouse the Stage requests, not the newer Freight of another origin.
    assert body["spec"]["freight"] == FREIGHT
    assert body["spec"]["steps"] == stage["spec"]["promotionTemplate"]["spec"]["steps"]
    assert re.fullmatch(r"paper\.[0-9a-z]{26}\.0a1b2c3", body["metadata"]["name"])
    assert head_commit(c.repo) == head  # Kargo commits, not the console
    entry = c.audit_entries()[-1]
    assert entry["action"] == "promotion.requested" and entry["notes"] == "via Kargo"
    assert entry["details"]["kargo_promotion"] == PROMOTION_NAME
    assert entry["actor"] == "alice@example.com"


def test_cluster_promote_blocked_creates_nothing(cluster_console, kube):
    c = cluster_console
    c.clock.set(MARKET_OPEN)
    r = c.post_json("/api/v1/promote", {"stage": "paper", "tag": TAG})
    assert r.status == 409 and r.json()["break_glass_possible"] is True
    assert kube.create_namespaced_custom_object.call_count == 0
    assert c.audit_entries()[-1]["action"] == "promotion.blocked"


def test_cluster_break_glass_is_consumed_by_the_kargo_gate_call(cluster_console, kube):
    c = cluster_console
    c.clock.set(MARKET_OPEN)
    body = {"stage": "paper", "tag": TAG, "justification": "broker outage fix", "confirm": "paper"}
    r = c.post_json("/api/v1/break-glass", body)
    assert r.status == 202, r.body
    grant = next(e for e in c.audit_entries() if e["action"] == "break-glass.granted")
    assert r.json()["break_glass"] == grant["id"]
    assert kube.create_namespaced_custom_object.call_count == 1
    # Kargo runs the Promotion; its gate step asks with the Promotion's name.
    gate = kargo_gate(c, f"stage=paper&tag={TAG}&promotion={PROMOTION_NAME}&actor=admin")
    assert gate.json()["allowed"] is True and gate.json()["break_glass"] == grant["id"]
    other = kargo_gate(c, f"stage=paper&tag={TAG}&promotion=paper.other.0a1b2c3")
    assert other.json()["allowed"] is False
    assert [e["action"] for e in c.audit_entries()].count("break-glass.consumed") == 1


def test_cluster_api_errors_are_502_and_record_no_request(cluster_console, kube):
    from kubernetes.client.exceptions import ApiException

    c = cluster_console
    error = ApiException(status=403, reason="Forbidden")
    error.body = json.dumps({"message": 'cannot "promote" stage paper'})
    kube.create_namespaced_custom_object.return_value = None
    kube.create_namespaced_custom_object.side_effect = error
    r = c.post_json("/api/v1/promote", {"stage": "paper", "tag": TAG})
    assert r.status == 502
    assert 'HTTP 403 Forbidden: cannot "promote" stage paper' in r.json()["error"]
    assert "promotion.requested" not in [e["action"] for e in c.audit_entries()]


def test_cluster_tag_without_freight_is_409(cluster_console, kube):
    r = cluster_console.post_json("/api/v1/promote", {"stage": "paper", "tag": "fedcba9"})
    assert r.status == 409
    assert (
        "no Kargo Freight from Warehouse/stonks-oracle carries image tag fedcba9"
        in (r.json()["error"])
    )
    assert kube.create_namespaced_custom_object.call_count == 0


def test_cluster_pulls_before_reading_and_pushes_stage_toggles(cluster_console, tmp_path):
    from _gitfix import clone, commit_file

    c = cluster_console
    other = clone(tmp_path / "remote.git", tmp_path / "other")
    values = "apps/stonks-oracle/paper/values.yaml"
    text = (other / values).read_text()
    tag_key_line = next(line for line in text.splitlines() if line.strip().startswith("tag:"))
    new_text = text.replace(tag_key_line, tag_key_line.split(":")[0] + ': "abc1234"', 1)
    commit_file(other, values, new_text, "promote(paper): abc1234 (by Kargo)")
    git(other, "push", "-q", "origin", "main")
    status = {s["name"]: s for s in c.get("/api/v1/status").json()["stages"]}
    assert status["paper"]["tag"] == "abc1234"  # pulled before reading
    r = c.post_json("/api/v1/stages/live", {"enabled": False})
    assert r.status == 200 and r.json()["status"] == "changed"
    remote_log = git(tmp_path / "remote.git", "log", "-2", "--format=%s")
    assert remote_log.splitlines() == [
        "stages(live): disable",
        "promote(paper): abc1234 (by Kargo)",
    ]
    assert c.audit_entries()[-1]["details"]["pushed"] is True


def test_cluster_pull_failure_degrades_reads_and_refuses_changes(cluster_console, tmp_path):
    c = cluster_console
    (tmp_path / "remote.git").rename(tmp_path / "gone.git")
    doc = c.get("/api/v1/status").json()
    assert doc["pull_error"] and "git" in doc["pull_error"]
    assert [s["name"] for s in doc["stages"]] == STAGES
    before = c.audit_bytes()
    r = c.post_json("/api/v1/stages/live", {"enabled": False})
    assert r.status == 502 and "git" in r.json()["error"]
    assert c.audit_bytes() == before


def test_cluster_fixtures_match_the_upstream_crds():
    import os

    import jsonschema
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)

    upstream = Path(
        os.environ.get(
            "PIPECTL_UPSTREAM_DIR", Path(__file__).resolve().parents[2] / "shared/upstream"
        )
    )
    crds = upstream / "kargo-v1.11.2"
    if not crds.is_dir():
        pytest.fail(f"{crds} not found (set PIPECTL_UPSTREAM_DIR)")
    for fixture, plural in (
        ("kargo-stage-paper.json", "stages"),
        ("kargo-promotion-created.json", "promotions"),
    ):
        crd = yaml.load((crds / f"kargo.akuity.io_{plural}.yaml").read_text())
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        jsonschema.validate(_fixture(f"console/{fixture}"), schema)
    crd = yaml.load((crds / "kargo.akuity.io_freights.yaml").read_text())
    for item in _fixture("console/kargo-freights.json")["items"]:
        jsonschema.validate(item, crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def test_kargo_promotion_body_and_name_helpers():
    from pipectl.console import kargo

    stage = _fixture("console/kargo-stage-paper.json")
    freights = _fixture("console/kargo-freights.json")["items"]
    assert (
        kargo.pick_freight(freights, stage, "9f8e7d6") == "1f2e3d4c5b6a79880716253443526170819a0b1c"
    )
    with pytest.raises(BadInput, match="carries image tag"):
        kargo.pick_freight(freights, stage, "1234567")
    name = kargo.promotion_name("paper", FREIGHT)
    assert re.fullmatch(r"paper\.[0-9a-z]{26}\.0a1b2c3", name)
    assert kargo.promotion_name("paper", FREIGHT) != name
    empty = {"metadata": {"name": "paper"}, "spec": {"promotionTemplate": {"spec": {"steps": []}}}}
    with pytest.raises(kargo.KargoError, match="no promotionTemplate steps"):
        kargo.promotion_body(empty, FREIGHT, "ns", name)


def test_cluster_mode_without_a_kubeconfig_is_a_clear_error(tmp_path):
    import os
    import subprocess
    import sys

    from _console import console_repo

    repo = console_repo(tmp_path / "repo")
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    env.update({"KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path)})
    out = subprocess.run(
        [sys.executable, "-m", "pipectl.cli", "--repo", str(repo), "serve", "--mode", "cluster",
         "--port", "0"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "cluster mode: no usable kubeconfig or in-cluster config" in out.stderr

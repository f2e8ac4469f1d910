"""The console's JSON API against a real server on 127.0.0.1, a real Git repository and a
real audit log; the market state follows the server's injected clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime

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
    ["stage=staging", "limit=0", "limit=x", "limit=-1", "stage=live&stage=paper", "foo=1"],
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


# --- tokens on the API -------------------------------------------------------------------------


def test_kargo_token_reaches_the_gate_route_only(console):
    r = console.client().request(
        "GET", "/api/v1/gate", headers={"Authorization": f"Bearer {KARGO_TOKEN}"}
    )
    assert r.status == 400  # authenticated and authorized; the parameters are missing
    assert console.audit_bytes() == b""


def test_market_closed_constant_is_closed(console):
    console.clock.set(MARKET_CLOSED)
    assert console.get("/api/v1/status").json()["market"]["open"] is False

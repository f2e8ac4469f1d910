"""pipectl.gate: the pure decision at the market's edges (DST, half days, holidays, weekends),
break-glass, approvals, integration tests; and evaluate(): recording, consumption, fail-closed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from _policyfix import OTHER_TAG, TAG, Clock, calendar_for, load, make_ctx, utc, write_config
from pipectl import gate
from pipectl.audit import AuditLog
from pipectl.errors import BadInput

# America/New_York: DST starts 2026-03-08 (Sun), ends 2026-11-01 (Sun).
# 2026-03-06 Fri (EST, UTC-5) | 2026-03-09 Mon (EDT, UTC-4)
# 2026-10-30 Fri (EDT, UTC-4) | 2026-11-02 Mon (EST, UTC-5)
# 2026-11-26 Thanksgiving (closed) | 2026-11-27 half day (13:00) | 2026-12-24 half day
# 2025-01-09 national day of mourning (closed)


@pytest.fixture
def config(tmp_path):
    return load(write_config(tmp_path / "pipeline.yaml"))


@pytest.fixture
def log(tmp_path):
    return AuditLog(tmp_path / "audit.jsonl", clock=Clock(utc("2026-01-02T00:00:00+00:00")))


def paper(config, at: str, entries=(), stage="paper", tag=TAG) -> gate.Decision:
    return gate.decide(config, calendar_for(config), list(entries), stage, tag, utc(at))


MARKET_EDGES = [
    # (instant, market open?)  -- paper is blocked exactly when the market is open
    ("2026-03-06T14:29:59+00:00", False),  # Fri 09:29:59 EST
    ("2026-03-06T14:30:00+00:00", True),  # Fri 09:30:00 EST
    ("2026-03-06T20:59:59+00:00", True),  # Fri 15:59:59 EST
    ("2026-03-06T21:00:00+00:00", False),  # Fri 16:00:00 EST
    ("2026-03-08T15:00:00+00:00", False),  # Sun, the DST change day
    ("2026-03-09T13:29:59+00:00", False),  # Mon 09:29:59 EDT (first day after DST)
    ("2026-03-09T13:30:00+00:00", True),  # Mon 09:30:00 EDT
    ("2026-03-09T14:29:59+00:00", True),  # would be 09:29:59 if DST were ignored
    ("2026-03-09T19:59:59+00:00", True),  # Mon 15:59:59 EDT
    ("2026-03-09T20:00:00+00:00", False),  # Mon 16:00:00 EDT
    ("2026-10-30T13:30:00+00:00", True),  # Fri 09:30 EDT
    ("2026-10-30T19:59:59+00:00", True),  # Fri 15:59:59 EDT
    ("2026-10-30T20:00:00+00:00", False),  # Fri 16:00:00 EDT
    ("2026-11-01T15:00:00+00:00", False),  # Sun, the DST change day
    ("2026-11-02T14:29:59+00:00", False),  # Mon 09:29:59 EST
    ("2026-11-02T14:30:00+00:00", True),  # Mon 09:30:00 EST
    ("2026-11-02T13:30:00+00:00", False),  # 08:30 EST: would be 09:30 without the DST end
    ("2026-11-02T20:59:59+00:00", True),  # Mon 15:59:59 EST
    ("2026-11-02T21:00:00+00:00", False),  # Mon 16:00:00 EST
    ("2026-11-27T17:59:59+00:00", True),  # half day 12:59:59 EST
    ("2026-11-27T18:00:00+00:00", False),  # half day 13:00:00 EST
    ("2026-12-24T17:59:59+00:00", True),  # half day 12:59:59 EST
    ("2026-12-24T18:00:00+00:00", False),  # half day 13:00:00 EST
    ("2026-11-26T16:00:00+00:00", False),  # Thanksgiving 11:00 EST
    ("2026-12-25T16:00:00+00:00", False),  # Christmas
    ("2025-01-09T16:00:00+00:00", False),  # one-off closure (day of mourning)
    ("2026-03-07T16:00:00+00:00", False),  # Saturday
    ("2026-03-08T16:00:00-04:00", False),  # Sunday
]


@pytest.mark.parametrize(("at", "market_open"), MARKET_EDGES)
def test_market_hours_gate_at_the_edges(config, at, market_open):
    d = paper(config, at)
    assert d.market_open is market_open
    assert d.allowed is (not market_open)
    if market_open:
        assert len(d.reasons) == 1 and d.reasons[0].startswith("market is open")
        assert d.seconds_to_close is not None and d.seconds_to_close > 0
    else:
        assert d.reasons == () and d.seconds_to_close is None
    assert d.break_glass is None


def test_seconds_to_close_and_message(config):
    d = paper(config, "2026-03-09T17:47:00+00:00")  # 13:47 EDT -> 2h 13m to the close
    assert d.seconds_to_close == 2 * 3600 + 13 * 60
    assert "closes in 2h 13m" in d.reasons[0] and "16:00 America/New_York" in d.reasons[0]
    assert d.message().startswith(f"blocked: {TAG} may not go to paper: market is open")
    assert "2h 13m" in d.message()
    half = paper(config, "2026-11-27T17:59:59+00:00")
    assert half.seconds_to_close == 1 and "13:00" in half.reasons[0]


def test_weekdays_calendar_has_no_holidays(tmp_path):
    config = load(write_config(tmp_path / "w.yaml", calendar="weekdays"))
    assert not paper(config, "2026-11-26T16:00:00+00:00").allowed  # Thanksgiving is a weekday
    assert paper(config, "2026-11-27T18:30:00+00:00").market_open  # no half day either
    assert paper(config, "2026-03-07T16:00:00+00:00").allowed  # Saturday


def test_stages_without_market_gate_ignore_the_market(config, log):
    log.append(action="inttest.passed", actor="ci", tag=TAG)
    d = paper(config, "2026-03-09T17:47:00+00:00", log.entries(), stage="beta")
    assert d.allowed and d.market_open and d.reasons == ()
    assert d.message() == f"allowed: {TAG} may go to beta; market closes in 2h 13m"
    assert paper(config, "2026-03-09T17:47:00+00:00", stage="ci").allowed


def test_decision_json_has_exactly_the_contract_keys(config):
    d = paper(config, "2026-03-09T17:47:00+00:00")
    doc = json.loads(json.dumps(d.to_json()))
    assert list(doc) == [
        "allowed",
        "stage",
        "tag",
        "reasons",
        "market_open",
        "seconds_to_close",
        "break_glass",
    ]
    assert doc["allowed"] is False and doc["stage"] == "paper" and doc["tag"] == TAG
    assert doc["seconds_to_close"] == 7980 and doc["break_glass"] is None


# -- stage and tag rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    ["abc123", "ABCDEF1", "0123abcg", "a" * 41, "0123abc\n", " 0123abc", "", "0123-abc"],
)
def test_malformed_tags_are_blocked(config, tag):
    d = paper(config, "2026-03-07T16:00:00+00:00", tag=tag)
    assert not d.allowed and d.reasons == (
        f"tag {tag!r} is not a git SHA (7-40 lower-case hex digits)",
    )


@pytest.mark.parametrize("tag", ["0123abc", "a" * 40, "0" * 7])
def test_well_formed_tags_pass(config, tag):
    assert paper(config, "2026-03-07T16:00:00+00:00", tag=tag).allowed


def test_unknown_and_disabled_stages(tmp_path):
    config = load(write_config(tmp_path / "p.yaml", disabled=("paper",)))
    d = paper(config, "2026-03-07T16:00:00+00:00", stage="prod")
    assert not d.allowed and d.reasons[0].startswith("unknown stage 'prod'")
    d = paper(config, "2026-03-07T16:00:00+00:00", stage="paper")
    assert not d.allowed and d.reasons == ("stage paper is disabled",)


def test_all_reasons_are_collected(tmp_path):
    config = load(write_config(tmp_path / "p.yaml", disabled=("live",)))
    d = paper(config, "2026-03-09T17:47:00+00:00", stage="live", tag="NOPE")
    assert not d.allowed
    assert len(d.reasons) == 3
    assert d.reasons[0] == "stage live is disabled"
    assert d.reasons[1].startswith("tag 'NOPE'")
    assert d.reasons[2].startswith("market is open")
    d = paper(config, "2026-03-09T17:47:00+00:00", stage="nowhere", tag="NOPE")
    assert len(d.reasons) == 2  # unknown stage: no stage rules beyond that


# -- approvals ----------------------------------------------------------------------------------


def test_live_needs_an_approval_with_notes_for_that_tag(config, log):
    closed = "2026-03-07T16:00:00+00:00"
    d = paper(config, closed, log.entries(), stage="live")
    assert not d.allowed and d.reasons == (
        f"live needs an approval with notes for {TAG} "
        f"(pipectl approve --stage live --tag {TAG} --notes ...)",
    )
    log.append(action="approval.granted", actor="lead", stage="live", tag=TAG, notes=" ")
    log.append(action="approval.granted", actor="lead", stage="live", tag=OTHER_TAG, notes="ok")
    assert not paper(config, closed, log.entries(), stage="live").allowed
    log.append(action="approval.granted", actor="lead", stage="live", tag=TAG, notes="looks ok")
    assert paper(config, closed, log.entries(), stage="live").allowed
    # approval is not consumed and does not lift the market block
    d = paper(config, "2026-03-09T17:47:00+00:00", log.entries(), stage="live")
    assert not d.allowed and d.reasons[0].startswith("market is open") and len(d.reasons) == 1
    assert paper(config, closed, log.entries(), stage="live").allowed


# -- integration test ---------------------------------------------------------------------------


def test_beta_needs_a_passed_integration_test(config, log):
    closed = "2026-03-07T16:00:00+00:00"
    d = paper(config, closed, log.entries(), stage="beta")
    assert d.reasons == (f"{TAG} has no integration-test result (integration-test is enabled)",)
    log.append(action="inttest.failed", actor="ci", tag=TAG)
    d = paper(config, closed, log.entries(), stage="beta")
    assert d.reasons == (f"{TAG} failed its latest integration test",)
    log.append(action="inttest.passed", actor="ci", tag=OTHER_TAG)
    assert not paper(config, closed, log.entries(), stage="beta").allowed
    log.append(action="inttest.passed", actor="ci", tag=TAG)
    assert paper(config, closed, log.entries(), stage="beta").allowed
    log.append(action="inttest.failed", actor="ci", tag=TAG)  # a later failure wins
    assert not paper(config, closed, log.entries(), stage="beta").allowed


def test_beta_without_inttest_when_integration_test_is_disabled(tmp_path):
    config = load(write_config(tmp_path / "p.yaml", disabled=("integration-test",)))
    d = paper(config, "2026-03-07T16:00:00+00:00", stage="beta")
    assert d.allowed and d.reasons == ()


# -- break-glass (pure) -------------------------------------------------------------------------


def _grant(log: AuditLog, stage="paper", tag=TAG):
    return log.append(
        action="break-glass.granted",
        actor="ops",
        stage=stage,
        tag=tag,
        justification="outage needs fix",
    )


def test_grant_lifts_only_the_market_block(config, tmp_path):
    clock = Clock(utc("2026-03-09T17:00:00+00:00"))
    log = AuditLog(tmp_path / "g.jsonl", clock=clock)
    g = _grant(log, stage="live")
    d = paper(config, "2026-03-09T17:30:00+00:00", log.entries(), stage="live")
    assert not d.allowed and d.break_glass == g.id
    assert len(d.reasons) == 1 and d.reasons[0].startswith("live needs an approval")
    log.append(action="approval.granted", actor="lead", stage="live", tag=TAG, notes="ok go")
    d = paper(config, "2026-03-09T17:30:00+00:00", log.entries(), stage="live")
    assert d.allowed and d.break_glass == g.id and d.market_open
    assert "break-glass grant" in d.message() and "market closes in 2h 30m" in d.message()


def test_grant_is_not_reported_while_the_market_is_closed(config, tmp_path):
    log = AuditLog(tmp_path / "g.jsonl", clock=Clock(utc("2026-03-07T16:00:00+00:00")))
    _grant(log)
    d = paper(config, "2026-03-07T16:30:00+00:00", log.entries())
    assert d.allowed and d.break_glass is None  # nothing to lift: the grant stays unused


@pytest.mark.parametrize(
    ("stage", "tag", "minutes_later"),
    [
        ("paper", OTHER_TAG, 1),  # grant for another tag
        ("live", TAG, 1),  # grant for another stage
        ("paper", TAG, 60),  # expired (validity 1h)
    ],
)
def test_grants_that_do_not_apply(config, tmp_path, stage, tag, minutes_later):
    clock = Clock(utc("2026-03-09T15:00:00+00:00"))
    log = AuditLog(tmp_path / "g.jsonl", clock=clock)
    _grant(log, stage=stage, tag=tag)
    at = clock.now + timedelta(minutes=minutes_later)
    d = gate.decide(config, calendar_for(config), log.entries(), "paper", TAG, at)
    assert not d.allowed and d.break_glass is None and d.reasons[0].startswith("market is open")
    if minutes_later == 60:
        just_before = at - timedelta(microseconds=1)
        d = gate.decide(config, calendar_for(config), log.entries(), "paper", TAG, just_before)
        assert d.allowed


def test_instant_outside_the_calendar_is_bad_input(config):
    with pytest.raises(BadInput, match="outside the supported market calendar"):
        paper(config, "1999-06-01T15:00:00+00:00")


# -- evaluate (I/O) -----------------------------------------------------------------------------


OPEN = "2026-03-09T15:00:00+00:00"  # Mon 11:00 EDT


def test_break_glass_used_twice_second_is_blocked(tmp_path):
    clock = Clock(utc(OPEN))
    ctx = make_ctx(tmp_path, clock)
    g = _grant(ctx.audit)
    first = gate.evaluate(
        ctx, "paper", TAG, clock.now, record=True, actor="kargo", source="kargo", promotion="p1"
    )
    assert first.allowed and first.break_glass == g.id
    clock.advance(minutes=1)
    second = gate.evaluate(
        ctx, "paper", TAG, clock.now, record=True, actor="kargo", source="kargo", promotion="p2"
    )
    assert not second.allowed and second.break_glass is None
    assert second.reasons[0].startswith("market is open")
    actions = [(e.action, e.details.get("grant")) for e in ctx.audit.entries()]
    assert actions == [
        ("break-glass.granted", None),
        ("break-glass.consumed", g.id),
        ("gate.allowed", None),
        ("gate.blocked", None),
    ]
    consumed, allowed, blocked = ctx.audit.entries()[1:]
    assert consumed.details == {"grant": g.id, "promotion": "p1"}
    assert allowed.details["source"] == "kargo" and allowed.details["promotion"] == "p1"
    assert allowed.details["break_glass"] == g.id and allowed.details["reasons"] == []
    assert blocked.details["reasons"] == list(second.reasons)
    assert blocked.details["promotion"] == "p2" and blocked.actor == "kargo"
    assert ctx.audit.verify().ok


def test_retried_call_for_the_same_promotion_gets_the_same_answer(tmp_path):
    clock = Clock(utc(OPEN))
    ctx = make_ctx(tmp_path, clock)
    g = _grant(ctx.audit)
    for _ in range(2):
        d = gate.evaluate(
            ctx, "paper", TAG, clock.now, record=True, actor="k", source="kargo", promotion="p1"
        )
        assert d.allowed and d.break_glass == g.id
    consumed = [e for e in ctx.audit.entries() if e.action == "break-glass.consumed"]
    assert len(consumed) == 1  # consumed once
    d = gate.evaluate(ctx, "paper", TAG, clock.now, record=True, actor="k", source="api")
    assert not d.allowed  # a call without the promotion name is another promotion


def test_consumption_and_decision_are_one_write(tmp_path):
    """The grant's consumption and the gate.allowed record are one batch: an intent record
    is written for it (see pipectl.audit) and both lines appear together."""
    clock = Clock(utc(OPEN))
    ctx = make_ctx(tmp_path, clock)
    _grant(ctx.audit)
    before = ctx.audit.path.read_bytes()
    gate.evaluate(ctx, "paper", TAG, clock.now, record=True, actor="k", source="kargo")
    added = ctx.audit.path.read_bytes()[len(before) :].splitlines()
    assert [json.loads(x)["action"] for x in added] == ["break-glass.consumed", "gate.allowed"]


def test_read_only_evaluate_writes_nothing_and_consumes_nothing(tmp_path):
    clock = Clock(utc(OPEN))
    ctx = make_ctx(tmp_path, clock)
    g = _grant(ctx.audit)
    before = ctx.audit.path.read_bytes()
    for _ in range(3):
        d = gate.evaluate(ctx, "paper", TAG, clock.now, record=False, actor="cli", source="cli")
        assert d.allowed and d.break_glass == g.id
    assert ctx.audit.path.read_bytes() == before


def test_evaluate_records_blocked_decisions_with_reasons(tmp_path):
    clock = Clock(utc("2026-03-07T16:00:00+00:00"))
    ctx = make_ctx(tmp_path, clock)
    d = gate.evaluate(ctx, "live", TAG, clock.now, record=True, actor="alice", source="api")
    assert not d.allowed
    (entry,) = ctx.audit.entries()
    assert entry.action == "gate.blocked" and entry.stage == "live" and entry.tag == TAG
    assert entry.details["reasons"] == list(d.reasons) and entry.details["source"] == "api"
    assert entry.details["promotion"] is None and entry.actor == "alice"


def test_evaluate_fails_closed_on_a_corrupt_log(tmp_path):
    clock = Clock(utc("2026-03-07T16:00:00+00:00"))
    ctx = make_ctx(tmp_path, clock)
    ctx.audit.append(action="inttest.passed", actor="ci", tag=TAG)
    with ctx.audit.path.open("ab") as fh:
        fh.write(b"garbage\n")
    before = ctx.audit.path.read_bytes()
    for record in (False, True):
        d = gate.evaluate(ctx, "ci", TAG, clock.now, record=record, actor="a", source="api")
        assert not d.allowed and d.market_open is None
        assert d.reasons == ("internal error: audit log line 2 is not JSON: "
                             "Expecting value: line 1 column 1 (char 0)",)  # fmt: skip
    assert ctx.audit.path.read_bytes() == before  # a corrupt log is not written to


def test_evaluate_fails_closed_on_a_broken_config(tmp_path):
    clock = Clock(utc("2026-03-07T16:00:00+00:00"))
    ctx = make_ctx(tmp_path, clock)
    ctx.config_path.write_text("version: 1\nstages: nope\n", encoding="utf-8")
    d = gate.evaluate(ctx, "ci", TAG, clock.now, record=False, actor="a", source="cli")
    assert not d.allowed and d.reasons[0].startswith("internal error: ")
    assert "pipeline.yaml" in d.reasons[0]


def test_evaluate_with_record_writes_a_blocked_entry_for_an_internal_error(tmp_path):
    clock = Clock(utc("2026-03-07T16:00:00+00:00"))
    ctx = make_ctx(tmp_path, clock)
    d = gate.evaluate(
        ctx, "paper", TAG, utc("1999-01-04T15:00:00+00:00"), record=True, actor="a", source="api"
    )
    assert not d.allowed and d.reasons[0].startswith("internal error: 1999-01-04")
    (entry,) = ctx.audit.entries()
    assert entry.action == "gate.blocked" and entry.details["reasons"] == list(d.reasons)


def test_consume_grant_inside_a_promotion_transaction(tmp_path):
    clock = Clock(utc(OPEN))
    ctx = make_ctx(tmp_path, clock)
    g = _grant(ctx.audit)
    config = ctx.config
    with ctx.audit.transaction() as txn:
        d = gate.decide(config, calendar_for(config), txn.entries, "paper", TAG, clock.now)
        assert d.allowed
        consumed = gate.consume_grant(txn, d, actor="alice", details={"commit": "c0ffee"})
        txn.append(action="promotion.completed", actor="alice", stage="paper", tag=TAG)
        # inside the same transaction the grant is already gone
        again = gate.decide(config, calendar_for(config), txn.entries, "paper", TAG, clock.now)
        assert not again.allowed
    assert consumed.details == {"commit": "c0ffee", "grant": g.id, "promotion": None}
    assert [e.action for e in ctx.audit.entries()][-2:] == [
        "break-glass.consumed",
        "promotion.completed",
    ]
    # nothing to consume for a blocked decision or one without a grant
    with ctx.audit.transaction() as txn:
        blocked = gate.decide(config, calendar_for(config), txn.entries, "paper", TAG, clock.now)
        assert gate.consume_grant(txn, blocked, actor="alice") is None
        closed = gate.decide(
            config, calendar_for(config), txn.entries, "ci", TAG, clock.now + timedelta(hours=9)
        )
        assert gate.consume_grant(txn, closed, actor="alice") is None


def test_a_failed_promotion_transaction_does_not_consume(tmp_path):
    clock = Clock(utc(OPEN))
    ctx = make_ctx(tmp_path, clock)
    g = _grant(ctx.audit)
    config = ctx.config
    with pytest.raises(RuntimeError), ctx.audit.transaction() as txn:
        d = gate.decide(config, calendar_for(config), txn.entries, "paper", TAG, clock.now)
        gate.consume_grant(txn, d, actor="alice")
        raise RuntimeError("git push failed")
    d = gate.decide(config, calendar_for(config), ctx.audit.entries(), "paper", TAG, clock.now)
    assert d.allowed and d.break_glass == g.id

"""pipectl.policy over real audit entries: grants (validity, consumption, binding), approvals,
integration-test results."""

from __future__ import annotations

from datetime import timedelta

import pytest
from _policyfix import OTHER_TAG, TAG, Clock, utc
from pipectl import policy
from pipectl.audit import AuditLog

HOUR = timedelta(hours=1)
T0 = utc("2026-03-09T14:00:00+00:00")


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def log(tmp_path, clock) -> AuditLog:
    return AuditLog(tmp_path / "audit.jsonl", clock=clock)


def grant(log: AuditLog, stage: str = "paper", tag: str = TAG, expires: str | None = None):
    details = {"expires": expires} if expires is not None else {}
    return log.append(
        action="break-glass.granted",
        actor="ops@example.com",
        stage=stage,
        tag=tag,
        justification="exchange outage fix",
        details=details,
    )


def consume(log: AuditLog, grant_id: str, promotion: str | None = None):
    return log.append(
        action="break-glass.consumed",
        actor="kargo",
        stage="paper",
        tag=TAG,
        details={"grant": grant_id, "promotion": promotion},
    )


# -- break-glass ------------------------------------------------------------------------------


def test_grant_is_active_from_issue_until_validity_exclusive(log, clock):
    g = grant(log)
    entries = log.entries()
    active = policy.active_break_glass
    assert active(entries, "paper", TAG, T0, HOUR) == g
    assert active(entries, "paper", TAG, T0 + HOUR - timedelta(microseconds=1), HOUR) == g
    assert active(entries, "paper", TAG, T0 + HOUR, HOUR) is None  # expired
    assert active(entries, "paper", TAG, T0 + 2 * HOUR, HOUR) is None
    # a question about a moment before the grant existed
    assert active(entries, "paper", TAG, T0 - timedelta(seconds=1), HOUR) is None


def test_grant_found_behind_a_long_tail_of_newer_entries(log, clock):
    g = grant(log)
    for i in range(500):
        clock.now = T0 + timedelta(seconds=i + 1)
        log.append(action="gate.blocked", actor="kargo", stage="paper", tag=OTHER_TAG)
    now = T0 + timedelta(minutes=30)
    assert policy.active_break_glass(log.entries(), "paper", TAG, now, HOUR) == g


def test_scan_back_to_the_validity_window_still_sees_the_consumption(log, clock):
    # Old noise before the window must not matter; consumption after the grant is seen.
    clock.now = T0 - 5 * HOUR
    log.append(action="gate.blocked", actor="kargo", stage="paper", tag=TAG)
    clock.now = T0
    g = grant(log)
    clock.now = T0 + timedelta(minutes=1)
    consume(log, g.id, promotion="p1")
    now = T0 + timedelta(minutes=2)
    assert policy.active_break_glass(log.entries(), "paper", TAG, now, HOUR) is None
    assert policy.active_break_glass(log.entries(), "paper", TAG, now, HOUR, "p1") == g


def test_clock_stepped_back_after_a_grant_fails_closed(log, clock):
    # The consumption was stamped before the window (clock stepped back): the scan stops
    # there and never reaches the grant, so the grant is not offered again.
    g = grant(log)
    clock.now = T0 - 3 * HOUR
    consume(log, g.id)
    assert policy.active_break_glass(log.entries(), "paper", TAG, T0, HOUR) is None


def test_grant_is_bound_to_its_stage_and_tag(log):
    grant(log, stage="paper", tag=TAG)
    entries = log.entries()
    assert policy.active_break_glass(entries, "live", TAG, T0, HOUR) is None
    assert policy.active_break_glass(entries, "paper", OTHER_TAG, T0, HOUR) is None
    assert policy.active_break_glass(entries, "paper", TAG[:-1], T0, HOUR) is None


def test_consumed_grant_is_gone(log):
    g = grant(log)
    consume(log, g.id)
    assert policy.active_break_glass(log.entries(), "paper", TAG, T0, HOUR) is None


def test_consumption_of_another_grant_does_not_count(log):
    g1 = grant(log)
    g2 = grant(log)
    consume(log, g1.id)
    assert policy.active_break_glass(log.entries(), "paper", TAG, T0, HOUR) == g2


def test_grant_consumed_by_a_promotion_stays_usable_for_that_promotion_only(log):
    g = grant(log)
    consume(log, g.id, promotion="paper.01abc")
    entries = log.entries()
    active = policy.active_break_glass
    assert active(entries, "paper", TAG, T0, HOUR, promotion="paper.01abc") == g
    assert active(entries, "paper", TAG, T0, HOUR, promotion="paper.02def") is None
    assert active(entries, "paper", TAG, T0, HOUR) is None
    assert active(entries, "paper", TAG, T0 + HOUR, HOUR, promotion="paper.01abc") is None
    assert policy.consumed_for_promotion(entries, g.id, "paper.01abc")
    assert not policy.consumed_for_promotion(entries, g.id, "paper.02def")


def test_grant_consumed_without_a_promotion_name_is_gone_for_everyone(log):
    g = grant(log)
    consume(log, g.id, promotion=None)
    entries = log.entries()
    assert policy.active_break_glass(entries, "paper", TAG, T0, HOUR, promotion="p") is None


def test_of_several_grants_the_one_expiring_first_is_used(log, clock):
    g1 = grant(log)
    clock.advance(minutes=10)
    grant(log)
    got = policy.active_break_glass(log.entries(), "paper", TAG, T0 + timedelta(minutes=20), HOUR)
    assert got == g1


def test_recorded_expiry_and_configured_validity_the_earlier_wins(log):
    short = grant(log, expires="2026-03-09T14:10:00.000000Z")
    entries = log.entries()
    at = T0 + timedelta(minutes=30)
    assert policy.active_break_glass(entries, "paper", TAG, at, HOUR) is None
    assert policy.grant_expires(short, HOUR) == utc("2026-03-09T14:10:00+00:00")
    # validity shortened in pipeline.yaml after the grant: the shorter one applies
    long = grant(log, expires="2026-03-09T20:00:00.000000Z")
    assert policy.grant_expires(long, timedelta(minutes=5)) == T0 + timedelta(minutes=5)
    # an unreadable recorded expiry falls back to the validity
    odd = grant(log, expires="soon")
    assert policy.grant_expires(odd, HOUR) == T0 + HOUR


def test_consumption_is_matched_on_details_grant_only(log):
    g = grant(log)
    # a consumed entry naming no grant, or another id, consumes nothing
    log.append(action="break-glass.consumed", actor="x", stage="paper", tag=TAG, details={})
    log.append(
        action="break-glass.consumed", actor="x", stage="paper", tag=TAG, details={"grant": "f00"}
    )
    assert policy.active_break_glass(log.entries(), "paper", TAG, T0, HOUR) == g


# -- approvals --------------------------------------------------------------------------------


def approve(log: AuditLog, notes: str | None, stage: str = "live", tag: str = TAG):
    return log.append(action="approval.granted", actor="lead", stage=stage, tag=tag, notes=notes)


def test_approval_needs_notes_and_matches_stage_and_tag(log):
    assert policy.approval_for(log.entries(), "live", TAG) is None
    approve(log, None)
    approve(log, "   ")
    approve(log, "checked", stage="paper")
    approve(log, "checked", tag=OTHER_TAG)
    assert policy.approval_for(log.entries(), "live", TAG) is None
    a = approve(log, "risk reviewed, canary fine")
    b = approve(log, "second look")
    assert policy.approval_for(log.entries(), "live", TAG) == b != a


# -- integration tests ------------------------------------------------------------------------


def inttest(log: AuditLog, passed: bool, tag: str = TAG):
    action = "inttest.passed" if passed else "inttest.failed"
    return log.append(action=action, actor="ci", stage="integration-test", tag=tag)


def test_inttest_latest_result_wins(log):
    assert policy.inttest_result(log.entries(), TAG) is None
    inttest(log, False)
    assert policy.inttest_result(log.entries(), TAG) == "failed"
    inttest(log, True)
    assert policy.inttest_result(log.entries(), TAG) == "passed"
    inttest(log, False, tag=OTHER_TAG)
    assert policy.inttest_result(log.entries(), TAG) == "passed"
    inttest(log, False)
    assert policy.inttest_result(log.entries(), TAG) == "failed"
    assert policy.inttest_result(log.entries(), OTHER_TAG) == "failed"

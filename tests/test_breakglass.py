"""pipectl.breakglass: grants and approvals are recorded exactly, and every refusal leaves the
audit log byte-identical -- even one whose last line is torn (a refusal must not even open
a transaction, which would set that line aside)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from _policyfix import TAG, Clock, load, utc, write_config
from pipectl.audit import AuditLog
from pipectl.breakglass import grant_break_glass, record_approval
from pipectl.errors import BadInput

NOW = utc("2026-03-09T15:00:00+00:00")


@pytest.fixture
def config(tmp_path):
    return load(write_config(tmp_path / "pipeline.yaml", disabled=("beta",)))


@pytest.fixture
def log(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl", clock=Clock(NOW))
    log.append(action="inttest.passed", actor="ci", tag=TAG)
    with log.path.open("ab") as fh:
        fh.write(b'{"torn":')  # a torn last line, as a crashed writer leaves it
    return log


def test_grant_records_stage_tag_justification_and_expiry(config, log):
    e = grant_break_glass(
        log, config, "paper", TAG, "  exchange outage,  hotfix needed \n", "ops@example.com"
    )
    assert e.action == "break-glass.granted" and e.stage == "paper" and e.tag == TAG
    assert e.justification == "exchange outage,  hotfix needed"
    assert e.actor == "ops@example.com" and e.time == "2026-03-09T15:00:00.000000Z"
    assert e.details == {"expires": "2026-03-09T16:00:00.000000Z", "validity_seconds": 3600}
    assert log.entries()[-1] == e and log.verify().ok


def test_grant_uses_the_configured_validity_and_an_explicit_now(tmp_path, log):
    config = load(write_config(tmp_path / "p.yaml", validity="15m"))
    e = grant_break_glass(log, config, "live", TAG, "vendor asked", "ops", now=NOW)
    assert e.details["expires"] == "2026-03-09T15:15:00.000000Z"
    assert e.details["validity_seconds"] == 900


def test_grant_inside_a_callers_transaction(config, log):
    with log.transaction() as txn:
        e = grant_break_glass(txn, config, "live", TAG, "release train late", "ops")
        assert txn.entries[-1] == e
    assert log.entries()[-1] == e


@pytest.mark.parametrize(
    ("stage", "tag", "justification", "message"),
    [
        ("prod", TAG, "two words", "unknown stage 'prod'"),
        ("beta", TAG, "two words", "stage beta is disabled"),
        ("ci", TAG, "two words", "stage ci has no market-hours gate"),
        ("integration-test", TAG, "two words", "has no market-hours gate"),
        ("paper", "XYZ", "two words", "is not a git SHA"),
        ("paper", TAG + "\n", "two words", "is not a git SHA"),
        ("paper", TAG, "", "--justification is empty"),
        ("paper", TAG, "   \n\t", "--justification is empty"),
        ("paper", TAG, "hotfix", "is one word"),
        ("paper", TAG, "  hotfix  ", "is one word"),
    ],
)
def test_bad_grants_are_refused_and_change_nothing(config, log, stage, tag, justification, message):
    before = log.path.read_bytes()
    with pytest.raises(BadInput, match=message):
        grant_break_glass(log, config, stage, tag, justification, "ops")
    assert log.path.read_bytes() == before
    assert not log.torn_path.exists()


def test_approval_records_notes(config, log):
    e = record_approval(log, config, "live", TAG, "  canary ok; risk reviewed ", "lead@example.com")
    assert e.action == "approval.granted" and e.stage == "live" and e.tag == TAG
    assert e.notes == "canary ok; risk reviewed" and e.actor == "lead@example.com"
    assert log.entries()[-1] == e


@pytest.mark.parametrize(
    ("stage", "tag", "notes", "message"),
    [
        ("paper", TAG, "fine", "stage paper has no approval gate"),
        ("prod", TAG, "fine", "unknown stage"),
        ("live", "0123ABC", "fine", "is not a git SHA"),
        ("live", TAG, "", "--notes is empty"),
        ("live", TAG, "  ", "--notes is empty"),
    ],
)
def test_bad_approvals_are_refused_and_change_nothing(config, log, stage, tag, notes, message):
    before = log.path.read_bytes()
    with pytest.raises(BadInput, match=message):
        record_approval(log, config, stage, tag, notes, "lead")
    assert log.path.read_bytes() == before


def test_a_grant_is_usable_only_within_its_validity(config, log):
    from pipectl import policy

    e = grant_break_glass(log, config, "paper", TAG, "outage fix now", "ops")
    entries = log.entries()
    validity = config.break_glass_validity
    assert policy.active_break_glass(entries, "paper", TAG, NOW, validity) == e
    later = NOW + timedelta(hours=1)
    assert policy.active_break_glass(entries, "paper", TAG, later, validity) is None

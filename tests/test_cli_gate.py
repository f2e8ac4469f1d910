"""CLI contract of `pipectl gate`, `audit log|verify|recover`, `break-glass` and `approve`:
exit codes, JSON, read-only gate, and byte-identical files after every refusal. The
break-glass confirmation is driven through a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from _policyfix import TAG, calendar_for, load, write_config
from pipectl.cli import main
from pipectl.timeutil import utc_now

OPEN_AT = "2026-03-09T11:00:00-04:00"
CLOSED_AT = "2026-03-07T11:00:00-05:00"  # Saturday


@pytest.fixture
def env(tmp_path):
    """A repo dir with its own pipeline.yaml (long break-glass validity, so a grant made now
    is still valid at the next market open) and an audit log path."""
    repo = tmp_path / "repo"
    repo.mkdir()
    write_config(repo / "pipeline.yaml", validity="10000h")
    return repo


def run(capsys, repo: Path, *args: str) -> tuple[int, str, str]:
    argv = ["--repo", str(repo), "--audit-log", str(repo / "audit.jsonl"), "--actor", "tester"]
    with pytest.raises(SystemExit) as info:
        main([*argv, *args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def snapshot(repo: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(repo.iterdir()) if p.is_file()}


# -- gate -------------------------------------------------------------------------------------


def test_gate_allowed_exit_0_and_json(capsys, env):
    code, out, err = run(capsys, env, "gate", "--stage", "paper", "--tag", TAG, "--at", CLOSED_AT,
                         "--json")  # fmt: skip
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "allowed": True,
        "stage": "paper",
        "tag": TAG,
        "reasons": [],
        "market_open": False,
        "seconds_to_close": None,
        "break_glass": None,
    }
    assert not (env / "audit.jsonl").exists()  # a query writes nothing


def test_gate_blocked_exit_3_with_reasons(capsys, env):
    code, out, _ = run(capsys, env, "gate", "--stage", "live", "--tag", TAG, "--at", OPEN_AT,
                       "--json")  # fmt: skip
    doc = json.loads(out)
    assert code == 3 and doc["allowed"] is False and doc["market_open"] is True
    assert doc["seconds_to_close"] == 5 * 3600
    assert len(doc["reasons"]) == 2
    assert doc["reasons"][0].startswith("market is open until 16:00")
    assert doc["reasons"][1].startswith("live needs an approval with notes")
    code, out, _ = run(capsys, env, "gate", "--stage", "paper", "--tag", TAG, "--at", OPEN_AT)
    assert code == 3 and out.startswith(f"blocked: {TAG} may not go to paper: market is open")
    assert "closes in 5h" in out and out.count("\n") == 1


@pytest.mark.parametrize(
    ("stage", "tag", "reason"),
    [
        ("prod", TAG, "unknown stage 'prod'"),
        ("paper", "ABC1234", "tag 'ABC1234' is not a git SHA"),
        ("paper", "abc", "tag 'abc' is not a git SHA"),
    ],
)
def test_gate_unknown_stage_or_bad_tag_is_a_blocked_decision(capsys, env, stage, tag, reason):
    code, out, err = run(capsys, env, "gate", "--stage", stage, "--tag", tag, "--at", CLOSED_AT,
                         "--json")  # fmt: skip
    assert code == 3 and err == ""
    assert json.loads(out)["reasons"][0].startswith(reason)


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("garbage", "not an ISO 8601 instant"),
        ("2026-03-09T10:00:00", "needs a UTC offset"),
        ("1999-01-04T15:00:00Z", "outside the supported market calendar"),
    ],
)
def test_gate_bad_at_is_bad_input_exit_2(capsys, env, at, message):
    code, out, err = run(capsys, env, "gate", "--stage", "paper", "--tag", TAG, "--at", at)
    assert code == 2 and out == ""
    assert err.startswith("pipectl: error: ") and message in err


def test_gate_broken_config_is_exit_2(capsys, env):
    (env / "pipeline.yaml").write_text("version: 1\nmarket: {open: '25:00'}\n", encoding="utf-8")
    code, out, err = run(capsys, env, "gate", "--stage", "paper", "--tag", TAG)
    assert code == 2 and out == "" and "pipeline.yaml" in err


def test_gate_fails_closed_on_a_corrupt_log(capsys, env):
    (env / "audit.jsonl").write_bytes(b"{not json}\n")
    code, out, _ = run(capsys, env, "gate", "--stage", "ci", "--tag", TAG, "--json")
    assert code == 3
    assert json.loads(out)["reasons"][0].startswith("internal error: audit log line 1")


def _next_open_instant(repo: Path) -> str:
    """An instant shortly after now at which the market is open."""
    cal = calendar_for(load(repo / "pipeline.yaml"))
    soon = utc_now() + timedelta(minutes=2)
    status = cal.status(soon)
    at = soon if status.open else status.next_open + timedelta(minutes=1)
    return at.isoformat()


def test_gate_sees_a_grant_but_does_not_consume_it(capsys, env):
    code, out, _ = run(capsys, env, "break-glass", "--stage", "paper", "--tag", TAG,
                       "--justification", "exchange outage fix", "--yes", "--json")  # fmt: skip
    assert code == 0
    grant = json.loads(out)
    before = snapshot(env)
    at = _next_open_instant(env)
    for _ in range(2):
        code, out, _ = run(capsys, env, "gate", "--stage", "paper", "--tag", TAG, "--at", at,
                           "--json")  # fmt: skip
        doc = json.loads(out)
        assert code == 0 and doc["allowed"] and doc["break_glass"] == grant["id"]
    code, out, _ = run(capsys, env, "gate", "--stage", "paper", "--tag", TAG, "--at", at)
    assert out.startswith(f"allowed: {TAG} may go to paper (break-glass grant {grant['id']}")
    assert snapshot(env) == before


# -- audit log / verify -----------------------------------------------------------------------


def _populate(capsys, repo: Path) -> None:
    assert run(capsys, repo, "approve", "--stage", "live", "--tag", TAG, "--notes", "ok go")[0] == 0
    assert run(capsys, repo, "break-glass", "--stage", "paper", "--tag", TAG,
               "--justification", "urgent fix", "--yes")[0] == 0  # fmt: skip
    assert (
        run(capsys, repo, "approve", "--stage", "live", "--tag", "abcdef0", "--notes", "x")[0] == 0
    )


def test_audit_log_filters_and_json(capsys, env):
    _populate(capsys, env)
    code, out, _ = run(capsys, env, "audit", "log", "--json")
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and [x["action"] for x in lines] == [
        "approval.granted",
        "break-glass.granted",
        "approval.granted",
    ]
    assert all(x["actor"] == "tester" for x in lines)
    code, out, _ = run(capsys, env, "audit", "log", "--stage", "live", "--json")
    assert [json.loads(x)["tag"] for x in out.splitlines()] == [TAG, "abcdef0"]
    code, out, _ = run(capsys, env, "audit", "log", "--tag", TAG)
    assert code == 0 and len(out.splitlines()) == 2
    assert "break-glass.granted" in out and '"urgent fix"' in out
    code, out, _ = run(capsys, env, "audit", "log", "--action", "break-glass.granted", "--json")
    assert len(out.splitlines()) == 1
    code, out, _ = run(capsys, env, "audit", "log", "--limit", "1", "--json")
    assert json.loads(out)["tag"] == "abcdef0"
    code, _, err = run(capsys, env, "audit", "log", "--action", "nope")
    assert code == 2 and "unknown" in err


def test_audit_verify_ok_then_names_the_edited_entry(capsys, env):
    _populate(capsys, env)
    code, out, _ = run(capsys, env, "audit", "verify")
    assert code == 0 and out.startswith("audit log intact: 3 entries")
    log = env / "audit.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    victim = json.loads(lines[1])
    lines[1] = lines[1].replace(b"urgent fix", b"urgent fiX")
    log.write_bytes(b"".join(lines))
    code, out, err = run(capsys, env, "audit", "verify")
    assert code == 1 and out == ""
    assert f"BROKEN at line 2, id {victim['id']}: hash mismatch" in err
    code, out, _ = run(capsys, env, "audit", "verify", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False and doc["bad_line"] == 2
    assert doc["bad_id"] == victim["id"] and doc["entries"] == 1


def test_audit_verify_names_deleted_and_swapped_entries(capsys, env):
    _populate(capsys, env)
    log = env / "audit.jsonl"
    original = log.read_bytes().splitlines(keepends=True)
    ids = [json.loads(x)["id"] for x in original]
    log.write_bytes(original[0] + original[2])
    code, out, _ = run(capsys, env, "audit", "verify", "--json")
    assert code == 1 and json.loads(out)["bad_id"] == ids[2]
    log.write_bytes(original[1] + original[0] + original[2])
    code, out, _ = run(capsys, env, "audit", "verify", "--json")
    assert code == 1 and (json.loads(out)["bad_line"], json.loads(out)["bad_id"]) == (1, ids[1])


def test_audit_recover(capsys, env):
    _populate(capsys, env)
    log = env / "audit.jsonl"
    good = log.read_bytes()
    log.write_bytes(good + b'{"half a li')
    code, _, err = run(capsys, env, "audit", "verify")
    assert code == 1 and "incomplete last line" in err
    code, out, _ = run(capsys, env, "audit", "recover")
    assert code == 0 and "set aside 11 bytes (torn line)" in out
    assert log.read_bytes() == good
    assert run(capsys, env, "audit", "verify")[0] == 0
    assert run(capsys, env, "audit", "recover")[1] == "nothing to recover\n"


# -- break-glass / approve --------------------------------------------------------------------


def test_break_glass_with_yes_prints_id_and_expiry(capsys, env):
    code, out, _ = run(capsys, env, "break-glass", "--stage", "live", "--tag", TAG,
                       "--justification", "vendor outage", "--yes")  # fmt: skip
    (entry,) = [json.loads(x) for x in (env / "audit.jsonl").read_bytes().splitlines()]
    assert code == 0
    assert out.startswith(f"break-glass grant {entry['id']} for {TAG} to live: valid until ")
    assert entry["details"]["expires"] in out and entry["justification"] == "vendor outage"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stage", "paper", "--tag", TAG, "--justification", "two words"],
         "refusing without --yes"),
        (["--stage", "paper", "--tag", TAG, "--justification", "hotfix", "--yes"], "one word"),
        (["--stage", "paper", "--tag", TAG, "--justification", " ", "--yes"], "is empty"),
        (["--stage", "beta", "--tag", TAG, "--justification", "two words", "--yes"],
         "no market-hours gate"),
        (["--stage", "nope", "--tag", TAG, "--justification", "two words", "--yes"],
         "unknown stage"),
        (["--stage", "paper", "--tag", "XYZ", "--justification", "two words", "--yes"],
         "not a git SHA"),
    ],
)  # fmt: skip
def test_break_glass_refusals_change_nothing(capsys, env, args, message):
    _populate(capsys, env)
    before = snapshot(env)
    code, out, err = run(capsys, env, "break-glass", *args)
    assert code == 2 and out == "" and message in err and err.startswith("pipectl: error: ")
    assert snapshot(env) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stage", "paper", "--tag", TAG, "--notes", "fine"], "no approval gate"),
        (["--stage", "live", "--tag", TAG, "--notes", "  "], "--notes is empty"),
        (["--stage", "live", "--tag", "abc", "--notes", "fine"], "not a git SHA"),
    ],
)
def test_approve_refusals_change_nothing(capsys, env, args, message):
    _populate(capsys, env)
    before = snapshot(env)
    code, out, err = run(capsys, env, "approve", *args)
    assert code == 2 and out == "" and message in err
    assert snapshot(env) == before


def test_approve_then_gate_allows_live_when_closed(capsys, env):
    code, out, _ = run(capsys, env, "gate", "--stage", "live", "--tag", TAG, "--at", CLOSED_AT)
    assert code == 3
    code, out, _ = run(capsys, env, "approve", "--stage", "live", "--tag", TAG, "--notes", "ok")
    assert code == 0 and out.startswith("approval ") and "by tester" in out
    code, out, _ = run(capsys, env, "gate", "--stage", "live", "--tag", TAG, "--at", CLOSED_AT)
    assert code == 0 and out == f"allowed: {TAG} may go to live\n"


# -- the break-glass confirmation on a real terminal ------------------------------------------


def _on_pty(repo: Path, answer: bytes | None, *extra: str) -> tuple[int, str]:
    """Run `pipectl break-glass` with a pseudo-terminal as stdin/stdout/stderr, answer the
    prompt with `answer` once it appears, return (exit code, everything the terminal showed)."""
    master, slave = pty.openpty()
    argv = [
        sys.executable, "-m", "pipectl.cli", "--repo", str(repo),
        "--audit-log", str(repo / "audit.jsonl"), "--actor", "tty-user",
        "break-glass", "--stage", "paper", "--tag", TAG,
        "--justification", "exchange outage fix", *extra,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPECTL_")}
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    seen = b""
    answered = answer is None
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"Type the stage name to confirm" in seen:
                os.write(master, answer)
                answered = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
    return code, seen.decode("utf-8", "replace")


def test_break_glass_on_a_terminal_asks_for_the_stage_name(env):
    code, screen = _on_pty(env, b"paper\n")
    assert code == 0, screen
    assert "lifts the market-hours gate of paper" in screen
    assert "break-glass grant " in screen and "valid until" in screen
    (entry,) = [json.loads(x) for x in (env / "audit.jsonl").read_bytes().splitlines()]
    assert entry["action"] == "break-glass.granted" and entry["actor"] == "tty-user"


@pytest.mark.parametrize("answer", [b"live\n", b"\n", b"Paper\n"])
def test_break_glass_wrong_confirmation_aborts_and_writes_nothing(env, answer):
    before = snapshot(env)
    code, screen = _on_pty(env, answer)
    assert code == 1, screen
    assert "confirmation did not match; nothing was recorded" in screen
    assert snapshot(env) == before


def test_break_glass_on_a_terminal_with_yes_does_not_ask(env):
    code, screen = _on_pty(env, None, "--yes")
    assert code == 0 and "Type the stage name" not in screen
    assert len((env / "audit.jsonl").read_bytes().splitlines()) == 1

"""The hash-chained audit log: chaining, verification, locking across processes, torn writes."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pipectl.audit import (
    ZERO_HASH,
    AuditCorrupt,
    AuditLog,
    canonical_json,
    entry_hash,
)
from pipectl.errors import BadInput

T0 = datetime(2026, 3, 9, 13, 30, tzinfo=UTC)


def ticking_clock(start: datetime = T0, step: timedelta = timedelta(seconds=1)):
    state = {"now": start - step}

    def clock() -> datetime:
        state["now"] += step
        return state["now"]

    return clock


def fill(log: AuditLog, n: int, **fields) -> list:
    out = []
    with log.transaction() as txn:
        for i in range(n):
            out.append(
                txn.append(
                    action="gate.blocked",
                    actor=fields.get("actor", "alice@example.com"),
                    stage="paper",
                    tag="abcdef1",
                    details={"reasons": [f"reason {i}"], "source": "test"},
                )
            )
    return out


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


# -- format and chaining --------------------------------------------------------------------


def test_entry_format_keys_time_and_chain(tmp_path):
    log = AuditLog(tmp_path / "deep" / "dir" / "audit.jsonl", clock=ticking_clock())
    first = log.append(
        action="break-glass.granted",
        actor="alice@example.com",
        stage="live",
        tag="abcdef1",
        justification="exchange outage hotfix",
        details={"expires": "2026-03-09T14:30:00.000000Z"},
    )
    second = log.append(
        action="approval.granted", actor="bob", stage="live", tag="abcdef1", notes="ok"
    )
    raw = log.path.read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 2
    objs = [json.loads(line) for line in raw.splitlines()]
    assert list(objs[0]) == sorted(objs[0])  # keys sorted
    assert set(objs[0]) == {
        "id", "time", "actor", "action", "stage", "from_stage", "tag",
        "notes", "justification", "details", "prev", "hash",
    }  # fmt: skip
    assert objs[0]["time"] == "2026-03-09T13:30:00.000000Z"
    assert objs[1]["time"] == "2026-03-09T13:30:01.000000Z"
    assert objs[0]["prev"] == ZERO_HASH
    assert objs[1]["prev"] == objs[0]["hash"] == first.hash
    # hash = SHA-256 of the canonical JSON without `hash`, computed independently here
    body = {k: v for k, v in objs[1].items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(text.encode()).hexdigest() == objs[1]["hash"] == second.hash
    # each line IS the canonical JSON of the entry
    assert raw.splitlines()[1].decode() == canonical_json(second.to_dict())
    assert len(first.id) == 32 and first.id != second.id
    assert log.entries() == [first, second]
    assert first.at == T0


def test_non_ascii_and_tricky_strings_roundtrip_and_verify(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    tricky = 'ünï "hash":"' + "0" * 64 + '","id":"x", "prev":"' + "1" * 64 + '", \\ \n \u2028 end\\'
    e = log.append(
        action="approval.granted",
        actor="zoë",
        stage="live",
        tag="abcdef1",
        notes=tricky,
        details={"hash": "x" * 64, "prev": "y" * 64, "id": "z", "nested": {"hash": "y"}},
    )
    log.append(action="approval.granted", actor="zoë", justification=tricky)
    assert log.path.read_bytes().count(b"\n") == 2
    assert log.entries()[0] == e and e.notes == tricky
    assert log.verify().ok and log.verify().entries == 2
    # an edit inside the tricky text is still caught
    raw = log.path.read_bytes()
    log.path.write_bytes(raw.replace("ünï".encode(), b"uni", 1))
    r = log.verify()
    assert not r.ok and r.bad_line == 1 and r.bad_id == e.id and "edited" in r.reason


def test_bad_entries_are_refused_and_write_nothing(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    fill(log, 2)
    before = log.path.read_bytes()
    with pytest.raises(ValueError, match="unknown audit action"):
        log.append(action="break-glass.consume", actor="a")
    with pytest.raises(BadInput):
        log.append(action="gate.allowed", actor="  ")
    with pytest.raises(BadInput, match="JSON"):
        log.append(action="gate.allowed", actor="a", details={"x": float("nan")})
    with pytest.raises(BadInput, match="JSON"):
        log.append(action="gate.allowed", actor="a", notes="\ud800")
    with pytest.raises(TypeError):
        log.append(action="gate.allowed", actor="a", tag=123)
    assert log.path.read_bytes() == before


def test_details_are_stored_as_json_would_read_them(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    e = log.append(action="gate.allowed", actor="a", details={"reasons": ("x", "y"), "n": 2})
    assert e.details == {"reasons": ["x", "y"], "n": 2}
    assert log.entries()[0].details == e.details


# -- transactions ---------------------------------------------------------------------------


def test_transaction_sees_existing_and_own_entries_and_writes_once(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    fill(log, 3)
    with log.transaction() as txn:
        assert len(txn.entries) == 3
        a = txn.append(action="promotion.requested", actor="a", stage="beta", tag="abcdef1")
        b = txn.append(action="promotion.completed", actor="a", stage="beta", tag="abcdef1")
        assert txn.entries[-2:] == [a, b] and b.prev == a.hash
        assert log.path.read_bytes().count(b"\n") == 3  # nothing written yet
        assert log.entries()[-1] == b  # same thread inside a txn: its view, no re-open
    assert len(log.entries()) == 5
    assert log.verify().ok


def test_exception_writes_nothing(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    fill(log, 2)
    before = log.path.read_bytes()
    with pytest.raises(RuntimeError, match="boom"), log.transaction() as txn:
        txn.append(action="gate.allowed", actor="a")
        raise RuntimeError("boom")
    assert log.path.read_bytes() == before
    assert len(log.entries()) == 2
    e = log.append(action="gate.allowed", actor="a")  # chain continues from entry 2
    assert e.prev == log.entries()[1].hash and log.verify().ok


def test_flush_writes_now_and_exception_keeps_flushed(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    with pytest.raises(KeyError), log.transaction() as txn:
        txn.append(action="promotion.requested", actor="a")
        txn.flush()
        assert log.path.read_bytes().count(b"\n") == 1
        txn.append(action="promotion.completed", actor="a")
        raise KeyError("x")
    assert [e.action for e in log.entries()] == ["promotion.requested"]
    assert log.verify().ok


def test_nested_transaction_refused_and_closed_txn_refuses_appends(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    other = AuditLog(tmp_path / "a.jsonl")
    with (
        log.transaction() as txn,
        pytest.raises(RuntimeError, match="nested"),
        other.transaction(),
    ):
        pass
    with pytest.raises(RuntimeError, match="closed"):
        txn.append(action="gate.allowed", actor="a")


def test_missing_log_reads_empty(tmp_path):
    log = AuditLog(tmp_path / "nope" / "a.jsonl")
    assert log.entries() == []
    assert log.verify().ok and log.verify().entries == 0
    assert not (tmp_path / "nope").exists()


def test_corrupt_complete_line_stops_readers(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    fill(log, 2)
    with log.path.open("ab") as fh:
        fh.write(b"not json\n")
    fresh = AuditLog(tmp_path / "a.jsonl")
    with pytest.raises(AuditCorrupt, match="line 3"):
        fresh.entries()
    with pytest.raises(AuditCorrupt), fresh.transaction():
        pass


def test_cached_reader_picks_up_appends_from_other_writers(tmp_path):
    path = tmp_path / "a.jsonl"
    reader = AuditLog(path)
    fill(reader, 2)
    assert len(reader.entries()) == 2
    # another process appends
    code = (
        "from pipectl.audit import AuditLog; import sys; "
        "AuditLog(sys.argv[1]).append(action='gate.allowed', actor='other')"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    got = reader.entries()
    assert [e.actor for e in got][-1] == "other" and len(got) == 3
    # the file was replaced by a different one (e.g. restored): the cache is not trusted
    tmp = tmp_path / "b.jsonl"
    fill(AuditLog(tmp), 1, actor="restored")
    os.replace(tmp, path)
    assert [e.actor for e in reader.entries()] == ["restored"]


def test_threads_in_one_process_do_not_interleave(tmp_path):
    path = tmp_path / "a.jsonl"

    def worker():
        log = AuditLog(path)
        for _ in range(50):
            with log.transaction() as txn:
                txn.append(action="gate.allowed", actor="t")
                log.entries()  # a reader in the same thread must not drop the lock
                txn.append(action="gate.blocked", actor="t")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = AuditLog(path)
    entries = log.entries()
    assert len(entries) == 400
    # each transaction's pair is adjacent
    assert [e.action for e in entries] == ["gate.allowed", "gate.blocked"] * 200
    assert log.verify().ok


def _mp_writer(path: str, n: int, who: str) -> None:
    log = AuditLog(path)
    for i in range(n):
        log.append(action="gate.allowed", actor=who, details={"i": i})


def test_eight_processes_times_500_appends(tmp_path):
    path = str(tmp_path / "a.jsonl")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_mp_writer, args=(path, 500, f"w{i}")) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    log = AuditLog(path)
    result = log.verify()
    assert result.ok and result.entries == 4000, result
    entries = log.entries()
    assert len({e.id for e in entries}) == 4000
    for i in range(8):  # each writer's entries are all there, in its own order
        assert [e.details["i"] for e in entries if e.actor == f"w{i}"] == list(range(500))


# -- torn writes ----------------------------------------------------------------------------

# A child that appends a batch through the real code path (AuditLog.transaction -> one
# os.write of all entries, looping on a short write). argv: log, pad size, entries, file size
# limit (0: none), "kill" to die of SIGXFSZ at the limit (the kernel terminates the writer in
# the middle of its write loop) or "error" to get EFBIG as an exception.
_WRITER = """
import resource, signal, sys
from pipectl.audit import AuditLog
path, pad, count, limit, mode = sys.argv[1:6]
log = AuditLog(path)
if int(limit):
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), resource.RLIM_INFINITY))
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL if mode == "kill" else signal.SIG_IGN)
with log.transaction() as txn:
    for i in range(int(count)):
        txn.append(action="gate.blocked", actor="victim", details={"pad": "x" * int(pad), "i": i})
    sys.stdout.write("ready\\n"); sys.stdout.flush()
"""


def _writer(path: Path, pad: int, count: int, limit: int = 0, mode: str = "kill"):
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(pad), str(count), str(limit), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _batch_line_length(tmp_path: Path, committed: bytes, pad: int) -> int:
    """Every line of the child's batch has the same length (fixed-size ids, times, hashes);
    measure it by letting the child finish on a copy of the log."""
    scratch = tmp_path / "scratch.jsonl"
    scratch.write_bytes(committed)
    child = _writer(scratch, pad, 3)
    child.communicate()
    assert child.returncode == 0
    grown = scratch.stat().st_size - len(committed)
    assert grown % 3 == 0
    return grown // 3


def _committed_log(tmp_path: Path) -> tuple[AuditLog, bytes]:
    log = AuditLog(tmp_path / "a.jsonl")
    fill(log, 20)
    return log, log.path.read_bytes()


def _assert_recovers(log: AuditLog, committed: bytes, data: bytes, reason: str) -> None:
    """After a writer died mid-write: readers see the 20 committed entries, verify names the
    damage, the next write sets it aside whole and continues the chain."""
    reader = AuditLog(log.path)
    assert len(reader.entries()) == 20
    assert all(e.actor != "victim" for e in reader.entries())
    result = reader.verify()
    assert not result.ok and result.torn and result.bad_line == 21 and result.entries == 20
    e = reader.append(action="gate.allowed", actor="next")
    after = log.path.read_bytes()
    assert after.startswith(committed) and after.count(b"\n") == 21
    assert e.prev == json.loads(committed.splitlines()[-1])["hash"]
    assert reader.verify().ok and reader.verify().entries == 21
    assert not reader.intent_path.exists()
    records = [json.loads(x) for x in reader.torn_path.read_bytes().splitlines()]
    assert len(records) == 1
    assert records[0]["reason"] == reason and records[0]["offset"] == len(committed)
    assert base64.b64decode(records[0]["base64"]) == data[len(committed) :]
    assert records[0]["time"].endswith("Z")


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("inside the first line", "torn line"),
        ("exactly after the first line", "unfinished transaction"),
        ("inside the third line", "unfinished transaction"),
    ],
)
def test_writer_killed_by_the_kernel_at_an_exact_byte(tmp_path, where, reason):
    """RLIMIT_FSIZE makes the write stop at a chosen byte and the next write call raise
    SIGXFSZ, whose default action terminates the writer inside its write loop."""
    log, committed = _committed_log(tmp_path)
    pad = 2000
    line = _batch_line_length(tmp_path, committed, pad)
    offset = {
        "inside the first line": 100,
        "exactly after the first line": line,  # file ends in a newline: no torn line at all
        "inside the third line": 2 * line + 777,
    }[where]
    child = _writer(log.path, pad, 5, limit=len(committed) + offset, mode="kill")
    child.communicate()
    assert child.returncode == -signal.SIGXFSZ
    data = log.path.read_bytes()
    assert len(data) == len(committed) + offset and data.startswith(committed)
    _assert_recovers(log, committed, data, reason)


def test_failed_write_is_cut_back_and_nothing_stays(tmp_path):
    """A write that fails half-way (EFBIG here) is truncated off by the writer itself."""
    log, committed = _committed_log(tmp_path)
    child = _writer(log.path, 2000, 5, limit=len(committed) + 5000, mode="error")
    _out, err = child.communicate()
    assert child.returncode == 1 and b"File too large" in err
    assert log.path.read_bytes() == committed
    assert AuditLog(log.path).verify().ok


def test_writer_sigkilled_mid_write(tmp_path):
    """SIGKILL lands while a large batch is being copied into the file (the size grows page by
    page); wherever it lands, the committed entries survive and recovery restores the chain."""
    log, committed = _committed_log(tmp_path)
    pad, count = 4 << 20, 6
    for _attempt in range(10):
        child = _writer(log.path, pad, count)
        assert child.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + 60
        while os.path.getsize(log.path) <= len(committed) and time.monotonic() < deadline:
            pass
        os.kill(child.pid, signal.SIGKILL)
        child.communicate()
        data = log.path.read_bytes()
        if len(committed) < len(data) and not data.endswith(b"\n"):
            break
        # the write finished before the kill (the parent was descheduled): undo and retry
        os.truncate(log.path, len(committed))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(log.intent_path)
    else:
        pytest.fail("could not SIGKILL the writer mid-write")
    assert child.returncode == -signal.SIGKILL and data.startswith(committed)
    full_lines = data.count(b"\n") - 20
    _assert_recovers(
        log, committed, data, "torn line" if full_lines == 0 else "unfinished transaction"
    )


def test_recover_is_a_noop_on_a_clean_log_and_moves_a_torn_tail(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    fill(log, 3)
    before = log.path.read_bytes()
    assert log.recover() is None and log.path.read_bytes() == before
    with log.path.open("ab") as fh:
        fh.write(b'{"action":"gate.allo')
    torn = log.recover()
    assert torn is not None and torn.offset == len(before) and torn.length == 20
    assert torn.reason == "torn line"
    assert log.path.read_bytes() == before
    assert log.verify().ok
    with log.path.open("ab") as fh:
        fh.write(b'{"second')
    assert log.recover().length == 8
    records = [json.loads(x) for x in log.torn_path.read_bytes().splitlines()]
    moved = [base64.b64decode(r["base64"]) for r in records]
    assert moved == [b'{"action":"gate.allo', b'{"second']


def test_a_finished_batch_leaves_no_intent_and_a_stale_intent_is_ignored(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    first = fill(log, 3)
    assert not log.intent_path.exists()
    # an intent record whose write completed (the unlink was lost in a crash)
    size = log.path.stat().st_size
    log._write_intent(offset=0, length=size, first=first[0].hash, last=first[-1].hash)
    fill(log, 2)
    assert len(log.entries()) == 5 and log.verify().ok
    # an intent whose first entry is not the one at its offset is stale: ignored
    log._write_intent(offset=size, length=10 * size, first="f" * 64, last="e" * 64)
    assert len(AuditLog(log.path).entries()) == 5 and log.verify().ok
    before = log.path.read_bytes()
    assert log.recover() is None and log.path.read_bytes() == before


def test_torn_tail_without_any_newline(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    log.path.write_bytes(b'{"partial')
    assert log.entries() == []
    e = log.append(action="gate.allowed", actor="a")
    assert e.prev == ZERO_HASH and log.verify().ok


# -- tamper detection -----------------------------------------------------------------------


def _rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def test_verify_names_an_edited_entry(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    entries = fill(log, 10)
    lines = lines_of(log.path)
    obj = json.loads(lines[4])
    obj["notes"] = "sneaky"
    lines[4] = (canonical_json(obj) + "\n").encode()
    _rewrite(log.path, lines)
    r = log.verify()
    assert not r.ok and r.bad_line == 5 and r.bad_id == entries[4].id and r.entries == 4
    assert "edited" in r.reason


def test_verify_names_an_edited_entry_even_with_a_recomputed_hash(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    entries = fill(log, 10)
    lines = lines_of(log.path)
    obj = json.loads(lines[4])
    obj["actor"] = "mallory"
    obj["hash"] = entry_hash(obj)
    lines[4] = (canonical_json(obj) + "\n").encode()
    _rewrite(log.path, lines)
    r = log.verify()
    assert not r.ok and r.bad_line == 6 and r.bad_id == entries[5].id
    assert "chain" in r.reason


def test_verify_names_the_entry_after_a_removed_one(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    entries = fill(log, 10)
    lines = lines_of(log.path)
    del lines[3]
    _rewrite(log.path, lines)
    r = log.verify()
    assert not r.ok and r.bad_line == 4 and r.bad_id == entries[4].id
    assert "removed" in r.reason


def test_verify_names_swapped_entries(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    entries = fill(log, 10)
    lines = lines_of(log.path)
    lines[6], lines[7] = lines[7], lines[6]
    _rewrite(log.path, lines)
    r = log.verify()
    assert not r.ok and r.bad_line == 7 and r.bad_id == entries[7].id


def test_verify_names_a_removed_first_entry(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    entries = fill(log, 3)
    _rewrite(log.path, lines_of(log.path)[1:])
    r = log.verify()
    assert not r.ok and r.bad_line == 1 and r.bad_id == entries[1].id


def test_verify_unparsable_line_and_wrong_keys_and_duplicate_id(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    fill(log, 4)
    lines = lines_of(log.path)

    _rewrite(log.path, [*lines[:2], b"{oops\n", *lines[2:]])
    r = log.verify()
    assert (r.ok, r.bad_line, r.bad_id, r.reason) == (False, 3, None, "unparsable line")

    obj = json.loads(lines[2])
    obj["extra"] = 1
    _rewrite(log.path, [*lines[:2], (canonical_json(obj) + "\n").encode(), *lines[3:]])
    r = log.verify()
    assert not r.ok and r.bad_line == 3 and "not an audit entry" in r.reason

    # a copy of entry 2 re-chained after entry 4: correct hashes, repeated id
    dup = json.loads(lines[1])
    dup["prev"] = json.loads(lines[3])["hash"]
    dup["hash"] = entry_hash(dup)
    _rewrite(log.path, [*lines, (canonical_json(dup) + "\n").encode()])
    r = log.verify()
    assert not r.ok and r.bad_line == 5 and r.bad_id == dup["id"] and r.reason == "duplicate id"


def test_reformatted_line_with_same_content_still_verifies(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    fill(log, 3)
    lines = lines_of(log.path)
    lines[1] = (json.dumps(json.loads(lines[1]), indent=None) + "\n").encode()  # spaces
    _rewrite(log.path, lines)
    assert log.verify().ok

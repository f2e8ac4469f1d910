"""The append-only, hash-chained audit log (JSON Lines).

Every entry is one line of canonical JSON (keys sorted, no spaces, UTF-8) with the keys
`id, time, actor, action, stage, from_stage, tag, notes, justification, details, prev, hash`.
`hash` is the SHA-256 of the canonical JSON of the entry without `hash`; `prev` is the previous
entry's `hash` (`"0" * 64` for the first), so an edited entry breaks its own hash and a removed or
reordered entry breaks the next entry's `prev`.

Writing (`AuditLog.transaction()`):
- the file is opened with `O_APPEND` and locked with an exclusive POSIX lock (`fcntl.lockf`),
  which NFSv4 honours across clients;
- a torn last line (the file does not end in a newline: a writer died mid-write) is moved to
  `<log>.torn` and truncated off before anything else happens; earlier entries are untouched;
- appended entries are buffered and written with ONE `os.write` and one `os.fsync` when the
  block exits cleanly (or at `txn.flush()`); an exception inside the block writes nothing.
- a single write is not atomic against a kill (the kernel stops a large write between pages),
  so a write of several entries first records its intent in `<log>.pending` (offset, length,
  hashes of its first and last entry). Until the whole batch is on disk, readers ignore it, and
  the next transaction moves it to `<log>.torn`: a transaction lands whole or not at all.

In-process rules: POSIX locks belong to the process and are released when the process closes
ANY descriptor of the file, and they do not exclude threads of one process. So every access
to a log in this process goes through `AuditLog`, which serialises them per path with a
re-entrant thread lock; a nested transaction on the same log is refused.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import gc
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipectl.errors import EXIT_FAILED, BadInput, PipectlError

ZERO_HASH = "0" * 64
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

ACTIONS = frozenset(
    {
        "gate.allowed",
        "gate.blocked",
        "break-glass.granted",
        "break-glass.consumed",
        "approval.granted",
        "inttest.passed",
        "inttest.failed",
        "promotion.requested",
        "promotion.completed",
        "promotion.blocked",
        "promotion.failed",
        "promotion.noop",
        "stage.enabled",
        "stage.disabled",
    }
)

FIELDS = (
    "id",
    "time",
    "actor",
    "action",
    "stage",
    "from_stage",
    "tag",
    "notes",
    "justification",
    "details",
    "prev",
    "hash",
)
_FIELD_SET = frozenset(FIELDS)
_NL = b"\n"


class AuditCorrupt(PipectlError):
    """A complete line of the log cannot be read as an entry; decisions must not go on."""

    exit_code = EXIT_FAILED


def canonical_json(obj: Any) -> str:
    """The one serialisation used for hashing and for the lines in the file."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def entry_hash(fields: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of an entry without its `hash` key."""
    body = {k: v for k, v in fields.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def format_time(at: datetime) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("audit clock must return a timezone-aware datetime")
    return at.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """Parse an entry's `time` (UTC, `...Z`) into an aware datetime."""
    return datetime.fromisoformat(text)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    time: str
    actor: str
    action: str
    stage: str | None
    from_stage: str | None
    tag: str | None
    notes: str | None
    justification: str | None
    details: dict[str, Any]
    prev: str
    hash: str

    @property
    def at(self) -> datetime:
        """`time` as an aware UTC datetime."""
        return parse_time(self.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "actor": self.actor,
            "action": self.action,
            "stage": self.stage,
            "from_stage": self.from_stage,
            "tag": self.tag,
            "notes": self.notes,
            "justification": self.justification,
            "details": self.details,
            "prev": self.prev,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int  # entries that verified before the first bad one (all of them when ok)
    bad_line: int | None = None  # 1-based line number of the first bad line
    bad_id: str | None = None  # its id, when the line could be read
    reason: str | None = None
    torn: bool = False  # the file ends in an incomplete line (a writer died mid-write)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "bad_line": self.bad_line,
            "bad_id": self.bad_id,
            "reason": self.reason,
            "torn": self.torn,
        }


@dataclass(frozen=True)
class TornTail:
    """Bytes of an incomplete last line that a transaction moved to `<log>.torn`."""

    offset: int
    length: int
    torn_path: Path
    reason: str  # "torn line" or "unfinished transaction"


def _entry_from_line(line: bytes, lineno: int) -> Entry:
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise AuditCorrupt(f"audit log line {lineno} is not JSON: {exc}") from None
    if type(obj) is not dict or obj.keys() != _FIELD_SET:
        raise AuditCorrupt(f"audit log line {lineno} is not an audit entry (wrong keys)")
    return Entry(**obj)


def _parse_lines(data: bytes, first_lineno: int) -> list[Entry]:
    """Parse complete lines (data ends with a newline, or is empty)."""
    lines = data.split(_NL)
    lines.pop()  # the empty string after the final newline
    # Many small containers at once: pausing the cyclic GC roughly halves the parse time.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return [_entry_from_line(line, first_lineno + i) for i, line in enumerate(lines)]
    finally:
        if gc_was_enabled:
            gc.enable()


def _read_all(fd: int, start: int = 0) -> bytes:
    size = os.fstat(fd).st_size
    chunks = []
    pos = start
    while pos < size:
        chunk = os.pread(fd, size - pos, pos)
        if not chunk:
            break
        chunks.append(chunk)
        pos += len(chunk)
    return b"".join(chunks)


@dataclass
class _PathState:
    lock: threading.RLock = field(default_factory=threading.RLock)
    txn: Transaction | None = None
    # Parsed prefix of the file: (st_dev, st_ino, size, last complete line, entries).
    cache: tuple[int, int, int, bytes, list[Entry]] | None = None


_STATES: dict[str, _PathState] = {}
_STATES_LOCK = threading.Lock()


def _state_for(path: Path) -> _PathState:
    key = os.path.realpath(path)
    with _STATES_LOCK:
        state = _STATES.get(key)
        if state is None:
            state = _STATES[key] = _PathState()
        return state


class Transaction:
    """An exclusive hold on the log: read `entries`, `append` new ones, written at the end."""

    def __init__(
        self,
        log: AuditLog,
        fd: int,
        entries: list[Entry],
        size: int,
        last_line: bytes,
        recovered: TornTail | None,
    ) -> None:
        self._log = log
        self._fd = fd
        self._entries = entries
        self._written = len(entries)  # entries[:_written] are on disk
        self._size = size  # bytes on disk (ends with a newline or is 0)
        self._last_line = last_line
        self._pending: list[bytes] = []
        self._open = True
        self.recovered = recovered

    @property
    def entries(self) -> Sequence[Entry]:
        """All entries: those in the file when the lock was taken, then those appended here.

        Do not mutate the returned sequence."""
        return self._entries

    @property
    def log(self) -> AuditLog:
        return self._log

    @property
    def last_hash(self) -> str:
        return self._entries[-1].hash if self._entries else ZERO_HASH

    def append(
        self,
        *,
        action: str,
        actor: str,
        stage: str | None = None,
        from_stage: str | None = None,
        tag: str | None = None,
        notes: str | None = None,
        justification: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Entry:
        """Buffer one entry (chained to the previous one) and return it."""
        if not self._open:
            raise RuntimeError("audit transaction is closed")
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        if not isinstance(actor, str) or not actor.strip():
            raise BadInput("audit entries need an actor")
        for name, value in (
            ("stage", stage),
            ("from_stage", from_stage),
            ("tag", tag),
            ("notes", notes),
            ("justification", justification),
        ):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"audit field {name} must be a string or None")
        fields: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "time": format_time(self._log.clock()),
            "actor": actor,
            "action": action,
            "stage": stage,
            "from_stage": from_stage,
            "tag": tag,
            "notes": notes,
            "justification": justification,
            "details": dict(details or {}),
            "prev": self.last_hash,
        }
        try:
            body = canonical_json(fields).encode("utf-8")
            # Round-trip details so the Entry holds exactly what the file will hold.
            fields["details"] = json.loads(canonical_json(fields["details"]))
        except (TypeError, ValueError, UnicodeEncodeError) as exc:
            raise BadInput(f"audit entry cannot be stored as JSON: {exc}") from None
        fields["hash"] = hashlib.sha256(body).hexdigest()
        line = canonical_json(fields).encode("utf-8")
        entry = Entry(**fields)
        self._pending.append(line + _NL)
        self._entries.append(entry)
        return entry

    def flush(self) -> None:
        """Write what is buffered now: one `os.write` of all of it, then `os.fsync`."""
        if not self._pending:
            return
        data = b"".join(self._pending)
        batch = len(self._pending) > 1
        if batch:
            self._log._write_intent(
                offset=self._size,
                length=len(data),
                first=self._entries[self._written].hash,
                last=self._entries[-1].hash,
            )
        _write_durably(self._fd, data, self._size)
        if batch:
            self._log._remove_intent()
        self._size += len(data)
        self._last_line = self._pending[-1][:-1]
        self._pending.clear()
        self._written = len(self._entries)

    def _discard(self) -> None:
        self._pending.clear()
        del self._entries[self._written :]


def _write_durably(fd: int, data: bytes, size_before: int) -> None:
    """One O_APPEND write (looping only if the kernel writes short) and fsync; on failure
    cut the file back to `size_before` so nothing half-written stays."""
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    except BaseException:
        try:
            os.ftruncate(fd, size_before)
            os.fsync(fd)
        except OSError:
            pass
        raise


def _start_of_line(fd: int, pos: int) -> int:
    """Offset just after the last newline before `pos` (0 if there is none)."""
    while pos > 0:
        step = min(65536, pos)
        i = os.pread(fd, step, pos - step).rfind(_NL)
        if i >= 0:
            return pos - step + i + 1
        pos -= step
    return 0


def _line_hash(line: bytes) -> str | None:
    try:
        value = json.loads(line).get("hash")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _unfinished_batch(intent: Mapping[str, Any] | None, tail: bytes, size: int) -> int | None:
    """Offset where an unfinished multi-entry write starts, or None.

    `intent` is the `<log>.pending` record, `tail` the file's bytes from its offset (at most
    its length), `size` the end of the complete lines considered. The batch is unfinished when
    its first line is there (same hash: the record is not stale) but not all of its bytes are;
    a batch whose first line is itself incomplete is handled as a torn line."""
    if not intent:
        return None
    offset, length = intent["offset"], intent["length"]
    if not offset < size < offset + length:
        return None
    nl = tail.find(_NL)
    if nl < 0 or _line_hash(tail[:nl]) != intent["first"]:
        return None
    return offset


class AuditLog:
    def __init__(self, path: str | os.PathLike[str], clock: Callable[[], datetime] | None = None):
        self.path = Path(path)
        self.clock: Callable[[], datetime] = clock or _utc_now
        self._state = _state_for(self.path)

    @property
    def torn_path(self) -> Path:
        """Where torn lines and unfinished transactions are set aside (JSON Lines)."""
        return self.path.with_name(self.path.name + ".torn")

    @property
    def intent_path(self) -> Path:
        """Intent record of a multi-entry write in progress (or of one that died)."""
        return self.path.with_name(self.path.name + ".pending")

    def _read_intent(self) -> dict[str, Any] | None:
        try:
            raw = self.intent_path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            rec = json.loads(raw)
            intent = {
                "offset": int(rec["offset"]),
                "length": int(rec["length"]),
                "first": str(rec["first"]),
                "last": str(rec["last"]),
            }
        except (ValueError, TypeError, KeyError):
            return None  # cut short before it was complete: its write never started
        return intent

    def _write_intent(self, *, offset: int, length: int, first: str, last: str) -> None:
        record = {"offset": offset, "length": length, "first": first, "last": last}
        fd = os.open(self.intent_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_durably(fd, canonical_json(record).encode("utf-8"), 0)
        finally:
            os.close(fd)

    def _remove_intent(self) -> None:
        with suppress(FileNotFoundError):
            os.unlink(self.intent_path)

    def _unfinished_in_file(self, fd: int, size: int) -> int | None:
        intent = self._read_intent()
        if intent is None or not intent["offset"] < size:
            return None
        tail = os.pread(
            fd, min(size, intent["offset"] + intent["length"]) - intent["offset"], intent["offset"]
        )
        return _unfinished_batch(intent, tail, size)

    # -- reading ---------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """All complete entries, without taking the file lock. A last line without a newline
        (a write in progress or a torn write) is ignored; any other unreadable line raises
        `AuditCorrupt` (decisions on a damaged log must not go on)."""
        state = self._state
        with state.lock:
            if state.txn is not None:  # this thread is inside a transaction on this log
                return list(state.txn.entries)
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return []
            try:
                entries, _size, _last = self._load(fd, state)
            finally:
                os.close(fd)
            return list(entries)

    def _load(self, fd: int, state: _PathState) -> tuple[list[Entry], int, bytes]:
        """Parse the complete lines of the file, reusing the cached prefix when the file has
        only grown since. Returns (entries, size of the complete part, last complete line)."""
        st = os.fstat(fd)
        cache = state.cache
        start, entries, last = 0, [], b""
        if cache is not None:
            c_dev, c_ino, c_size, c_last, c_entries = cache
            if (
                c_dev == st.st_dev
                and c_ino == st.st_ino
                and c_size <= st.st_size
                and (
                    c_size == 0
                    or os.pread(fd, len(c_last) + 1, c_size - len(c_last) - 1) == c_last + _NL
                )
            ):
                # Shared, not copied: the cached list only ever grows by what is on disk,
                # and only under state.lock (a transaction's unwritten tail is cut off again).
                start, entries, last = c_size, c_entries, c_last
        data = _read_all(fd, start)
        cut = data.rfind(_NL) + 1
        unfinished = self._unfinished_in_file(fd, start + cut) if cut else None
        if unfinished is not None and unfinished >= start:
            cut = unfinished - start
        if cut:
            entries.extend(_parse_lines(data[:cut], len(entries) + 1))
            last = data[data.rfind(_NL, 0, cut - 1) + 1 : cut - 1]
        size = start + cut
        state.cache = (st.st_dev, st.st_ino, size, last, entries)
        return entries, size, last

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Hold the log exclusively; see the module docstring."""
        state = self._state
        with state.lock:
            if state.txn is not None:
                raise RuntimeError(f"nested audit transaction on {self.path}")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX)
                if created:
                    _fsync_dir(self.path.parent)
                recovered = self._recover_torn(fd)
                entries, size, last = self._load(fd, state)
                txn = Transaction(self, fd, entries, size, last, recovered)
                state.txn = txn
                try:
                    yield txn
                except BaseException:
                    txn._discard()
                    raise
                else:
                    txn.flush()
                finally:
                    txn._open = False
                    state.txn = None
                    del txn._entries[txn._written :]  # whatever never reached the disk
                    st = os.fstat(fd)
                    state.cache = (st.st_dev, st.st_ino, txn._size, txn._last_line, txn._entries)
            finally:
                os.close(fd)  # also releases the lock

    def _recover_torn(self, fd: int) -> TornTail | None:
        """Under the exclusive lock: set aside a torn last line and an unfinished batch."""
        size = os.fstat(fd).st_size
        cut, reason = size, ""
        if size and os.pread(fd, 1, size - 1) != _NL:
            cut, reason = _start_of_line(fd, size), "torn line"
        unfinished = self._unfinished_in_file(fd, cut)
        if unfinished is not None:
            cut, reason = unfinished, "unfinished transaction"
        if cut == size:
            self._remove_intent()
            return None
        partial = os.pread(fd, size - cut, cut)
        record = {
            "time": format_time(_utc_now()),
            "log": str(self.path),
            "reason": reason,
            "offset": cut,
            "length": len(partial),
            "text": partial.decode("utf-8", "replace"),
            "base64": base64.b64encode(partial).decode("ascii"),
        }
        tfd = os.open(self.torn_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            record_bytes = (canonical_json(record) + "\n").encode("utf-8")
            _write_durably(tfd, record_bytes, os.fstat(tfd).st_size)  # keeps earlier records
        finally:
            os.close(tfd)
        os.ftruncate(fd, cut)
        os.fsync(fd)
        self._remove_intent()
        return TornTail(offset=cut, length=len(partial), torn_path=self.torn_path, reason=reason)

    def append(self, **fields: Any) -> Entry:
        """A one-entry transaction; same keyword arguments as `Transaction.append`."""
        with self.transaction() as txn:
            return txn.append(**fields)

    def recover(self) -> TornTail | None:
        """Set aside a torn last line now (any transaction does this first anyway)."""
        with self.transaction() as txn:
            return txn.recovered

    # -- verification ----------------------------------------------------------------------

    def verify(self) -> VerifyResult:
        """Check the whole chain in one pass. Takes a shared lock when the file system
        offers one, so a write in progress is not mistaken for a torn line."""
        state = self._state
        with state.lock:
            if state.txn is not None:  # recovered when the transaction began
                return verify_bytes(_read_all(state.txn._fd))
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return VerifyResult(ok=True, entries=0)
            try:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_SH)
                except OSError as exc:
                    if exc.errno not in (errno.ENOLCK, errno.EBADF, errno.EINVAL):
                        raise
                data = _read_all(fd)
            finally:
                os.close(fd)
        return verify_bytes(data, self._read_intent())


def _fsync_dir(path: Path) -> None:
    try:
        dfd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _slow_check(line: bytes, n: int) -> tuple[bytes, bytes, bytes] | VerifyResult:
    """Full check of one line: parse, keys, hash of the re-serialised entry. Returns
    (id, hash, prev) as UTF-8 bytes, or the failure."""
    try:
        obj = json.loads(line)
    except ValueError:
        return VerifyResult(False, n - 1, n, None, "unparsable line")
    if type(obj) is not dict or obj.keys() != _FIELD_SET:
        bad_id = obj.get("id") if type(obj) is dict else None
        return VerifyResult(
            False, n - 1, n, bad_id if isinstance(bad_id, str) else None, "not an audit entry"
        )
    entry_id, stored, prev = obj["id"], obj["hash"], obj["prev"]
    if type(entry_id) is not str or type(stored) is not str or type(prev) is not str:
        return VerifyResult(False, n - 1, n, None, "not an audit entry (bad id/hash/prev)")
    if entry_hash(obj) != stored:
        return VerifyResult(False, n - 1, n, entry_id, "hash mismatch: the entry was edited")
    return entry_id.encode("utf-8"), stored.encode("utf-8"), prev.encode("utf-8")


def verify_bytes(data: bytes, intent: Mapping[str, Any] | None = None) -> VerifyResult:
    """Verify a whole log held in memory (`intent`: the `<log>.pending` record, if any).

    Fast path per line, without parsing JSON: writers produce canonical JSON, so the line minus
    its `"hash":"<64 hex>",` member is exactly the text that was hashed, and `id` and `prev` sit
    at fixed places (keys sorted; every member after `hash` is a string or null, whose quotes
    are escaped, so the last `"hash":"` and `"prev":"` are the top-level keys). A cut in the
    wrong place cannot produce a match (the digest would have to be part of its own input).
    Any line that does not pass the fast path gets the full check (parse, keys,
    re-serialise), which also accepts a line re-formatted without a content change."""
    complete = data.rfind(_NL) + 1
    unfinished = None
    if intent:
        offset = intent["offset"]
        unfinished = _unfinished_batch(intent, data[offset : offset + intent["length"]], complete)
    lines = data[:unfinished].split(_NL) if unfinished is not None else data.split(_NL)
    tail = lines.pop()
    sha256 = hashlib.sha256
    prev = ZERO_HASH.encode()
    seen: set[bytes] = set()
    n = 0
    for n, line in enumerate(lines, 1):
        k = line.rfind(b'"hash":"')
        p = line.rfind(b'"prev":"')
        stored = line[k + 8 : k + 72]
        if (
            0 < k < p
            and line[k + 74 : k + 80] == b'"id":"'
            and line[p + 72 : p + 74] == b'",'
            and line.startswith(b'{"action":"')
            and line.endswith(b'"}')
            and sha256(line[:k] + line[k + 74 :]).hexdigest().encode() == stored
        ):
            entry_id = line[k + 80 : line.find(b'"', k + 80)]
            line_prev = line[p + 8 : p + 72]
        else:
            checked = _slow_check(line, n)
            if type(checked) is VerifyResult:
                return checked
            entry_id, stored, line_prev = checked  # type: ignore[misc]
        if line_prev != prev:
            return VerifyResult(
                False,
                n - 1,
                n,
                entry_id.decode("utf-8", "replace"),
                "chain broken: prev does not match the previous entry "
                "(an entry was removed, inserted or reordered)",
            )
        if entry_id in seen:
            return VerifyResult(
                False, n - 1, n, entry_id.decode("utf-8", "replace"), "duplicate id"
            )
        seen.add(entry_id)
        prev = stored
    if unfinished is not None:
        return VerifyResult(
            False,
            n,
            n + 1,
            None,
            f"unfinished transaction from line {n + 1} on (a writer died mid-write); "
            "the next write sets it aside",
            torn=True,
        )
    if tail:
        return VerifyResult(
            False,
            n,
            n + 1,
            None,
            "incomplete last line (a writer died mid-write); the next write sets it aside",
            torn=True,
        )
    return VerifyResult(True, n)

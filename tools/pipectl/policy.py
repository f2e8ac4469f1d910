"""What the audit log says about a (stage, tag): pure functions over a list of entries.

The log is the only memory the gate has: break-glass grants and their consumption, approvals
and integration-test results are all audit entries, so these functions take the entries (in
log order) and never do I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Literal

from pipectl.audit import Entry, parse_time
from pipectl.timeutil import iso_utc_micro

GRANTED = "break-glass.granted"
CONSUMED = "break-glass.consumed"
APPROVED = "approval.granted"
INTTEST_PASSED = "inttest.passed"
INTTEST_FAILED = "inttest.failed"


def grant_expires(grant: Entry, validity: timedelta) -> datetime:
    """When a grant stops being usable (exclusive): `validity` after it was issued, or the
    `details.expires` it was recorded with if that is earlier (a validity shortened in
    pipeline.yaml since applies to old grants; a lengthened one does not extend them)."""
    expires = parse_time(grant.time) + validity
    recorded = grant.details.get("expires") if isinstance(grant.details, dict) else None
    if isinstance(recorded, str):
        with suppress(ValueError):  # an unreadable expiry: the validity alone decides
            expires = min(expires, parse_time(recorded))
    return expires


def consumed_by(entries: Sequence[Entry]) -> dict[str, list[Entry]]:
    """grant id -> the `break-glass.consumed` entries that name it in `details.grant`."""
    out: dict[str, list[Entry]] = {}
    for e in entries:
        _note_consumption(out, e)
    return out


def _note_consumption(out: dict[str, list[Entry]], e: Entry) -> None:
    if e.action == CONSUMED and isinstance(e.details, dict):
        grant = e.details.get("grant")
        if isinstance(grant, str):
            out.setdefault(grant, []).append(e)


def _before(entry_time: str, cutoff: str) -> bool:
    """Whether an entry's time is earlier than `cutoff` (both canonical `...ffffffZ`, which
    sort as text); anything else is compared as instants."""
    if len(entry_time) == len(cutoff) and entry_time.endswith("Z"):
        return entry_time < cutoff
    return parse_time(entry_time) < parse_time(cutoff)


def active_break_glass(
    entries: Sequence[Entry],
    stage: str,
    tag: str,
    now: datetime,
    validity: timedelta,
    promotion: str | None = None,
) -> Entry | None:
    """The usable break-glass grant for exactly this stage and tag at `now`, or None.

    Usable: issued at or before `now`, `now` before its expiry (see `grant_expires`), and not
    consumed. With `promotion` (a Kargo Promotion name), a grant consumed by that same
    promotion stays usable for it, so a retried gate call for one promotion gets the same
    answer; it never lets a second promotion through. Of several usable grants the one that
    expires first is returned.

    The log is scanned newest first and only back to `now - validity`: an older grant has
    expired, and a grant's consumption is always written after it, so it is seen before the
    grant. Should the clock ever have stepped back, the scan stops early and at worst misses
    a grant — the gate then blocks, it never lets a consumed grant through."""
    cutoff = iso_utc_micro(now - validity)
    used: dict[str, list[Entry]] = {}
    best: tuple[datetime, Entry] | None = None
    for e in reversed(entries):
        # Text comparison first (canonical times sort as text); confirm before stopping.
        if e.time < cutoff and _before(e.time, cutoff):
            break
        action = e.action
        if action == CONSUMED:
            _note_consumption(used, e)
            continue
        if action != GRANTED or e.stage != stage or e.tag != tag:
            continue
        consumers = used.get(e.id, ())
        if consumers and not (
            promotion
            and all(
                isinstance(c.details, dict) and c.details.get("promotion") == promotion
                for c in consumers
            )
        ):
            continue
        issued = parse_time(e.time)
        expires = grant_expires(e, validity)
        if not issued <= now < expires:
            continue
        if best is None or expires < best[0]:
            best = (expires, e)
    return best[1] if best else None


def consumed_for_promotion(entries: Sequence[Entry], grant_id: str, promotion: str) -> bool:
    """Whether `grant_id` was already consumed by this promotion (no second record needed)."""
    return any(
        isinstance(c.details, dict) and c.details.get("promotion") == promotion
        for c in consumed_by(entries).get(grant_id, ())
    )


def approval_for(entries: Sequence[Entry], stage: str, tag: str) -> Entry | None:
    """The newest `approval.granted` with non-blank notes for this stage and tag, or None.
    Approvals are not consumed: one approval lets the tag through as often as needed."""
    for e in reversed(entries):
        if (
            e.action == APPROVED
            and e.stage == stage
            and e.tag == tag
            and isinstance(e.notes, str)
            and e.notes.strip()
        ):
            return e
    return None


def inttest_entry(entries: Sequence[Entry], tag: str) -> Entry | None:
    """The newest `inttest.passed|inttest.failed` entry recorded for `tag`, or None."""
    for e in reversed(entries):
        if e.tag == tag and e.action in (INTTEST_PASSED, INTTEST_FAILED):
            return e
    return None


def inttest_result(entries: Sequence[Entry], tag: str) -> Literal["passed", "failed"] | None:
    """The newest integration-test result recorded for `tag` (the latest run wins)."""
    entry = inttest_entry(entries, tag)
    if entry is None:
        return None
    return "passed" if entry.action == INTTEST_PASSED else "failed"

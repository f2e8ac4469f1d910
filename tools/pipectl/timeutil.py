"""Time helpers shared by every pipectl module: parsing instants and durations, formatting.

Every instant pipectl handles is timezone-aware; a naive timestamp is refused rather than
guessed, because a promotion gate that silently reads local time as UTC is a gate that opens
at the wrong hour.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from pipectl.errors import BadInput

__all__ = [
    "humanize_seconds",
    "iso",
    "iso_utc_micro",
    "parse_duration",
    "parse_instant",
    "utc_now",
]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)([hms])")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


def utc_now() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant with a UTC offset (``Z`` allowed) into an aware datetime."""
    if not isinstance(text, str) or not text.strip():
        raise BadInput(f"{text!r}: not an ISO 8601 instant (e.g. 2026-03-09T09:30:00-04:00)")
    raw = text.strip()
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise BadInput(
            f"{raw!r}: not an ISO 8601 instant (e.g. 2026-03-09T09:30:00-04:00)"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise BadInput(f"{raw!r}: needs a UTC offset (e.g. Z or -04:00)")
    return parsed


def _require_aware(dt: datetime) -> None:
    if not isinstance(dt, datetime) or dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got {dt!r}")


def iso(dt: datetime) -> str:
    """ISO 8601 with its UTC offset, to the second: ``2026-03-09T09:30:00-04:00``."""
    _require_aware(dt)
    return dt.replace(microsecond=0).isoformat()


def iso_utc_micro(dt: datetime) -> str:
    """UTC with microseconds and a ``Z``: ``2026-03-09T13:30:00.000000Z`` (audit ``time``)."""
    _require_aware(dt)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration of ``h``/``m``/``s`` parts (``1h``, ``1h30m``, ``90s``, ``1.5h``).

    Zero is allowed here (callers decide whether it makes sense); a sign, a bare number or an
    unknown unit is a BadInput.
    """
    if not isinstance(text, str):
        raise BadInput(f"{text!r}: not a duration (expected e.g. 1h, 30m, 1h30m)")
    raw = text.strip()
    if raw.startswith("-"):
        raise BadInput(f"{raw!r}: a duration must not be negative")
    body = raw[1:] if raw.startswith("+") else raw
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise BadInput(f"{raw!r}: not a duration (expected e.g. 1h, 30m, 1h30m; units h, m, s)")
    return timedelta(seconds=total)


def humanize_seconds(seconds: float) -> str:
    """Two most significant units, fractions rounded up: 7980 → ``2h 13m``, 59.2 → ``1m``."""
    if seconds < 0:
        raise ValueError(f"negative duration: {seconds!r}")
    remaining = math.ceil(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count or parts:
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    parts = [p for p in parts if not p.startswith("0")] or ["0s"]
    return " ".join(parts)

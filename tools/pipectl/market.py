"""The market calendar: trading sessions and whether the market is open at an instant.

Pure logic over a `pipectl.config.Market`: no I/O beyond reading the holiday rules of the
`holidays` package. Two calendars:

- ``nyse``: NYSE trading days. Full closures (regular holidays and one-off closures such as
  2025-01-09 or 2012-10-29/30) and half days closing at 13:00 market time come from
  ``holidays``' NYSE calendar (categories ``public`` and ``half_day``).
- ``weekdays``: strictly Monday to Friday, no holidays.

A session runs from its open instant (inclusive) to its close instant (exclusive). Instants are
built with ``zoneinfo`` in the market's timezone, so they follow DST.

The gate runs as a fresh process, so importing this module is cheap: the ``holidays`` package
is loaded on the first NYSE lookup, and then only its NYSE calendar (the
``holidays.financial`` package would import every exchange and every country it builds on).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pipectl.errors import BadInput
from pipectl.timeutil import iso

if TYPE_CHECKING:
    from pipectl.config import Market

__all__ = [
    "FIRST_YEAR",
    "HALF_DAY_CLOSE",
    "LAST_YEAR",
    "MarketCalendar",
    "MarketStatus",
    "Session",
]

FIRST_YEAR = 2000
LAST_YEAR = 2035
HALF_DAY_CLOSE = time(13, 0)
# Longest run of days without a session in the supported range is 6 (2001-09-11 .. 09-16);
# this bound only stops a search that could never succeed.
_MAX_GAP_DAYS = 14


@dataclass(frozen=True)
class Session:
    """One trading day: open (inclusive) and close (exclusive), aware, in market time."""

    date: date
    open: datetime
    close: datetime

    # Arithmetic and comparisons go through UTC: Python subtracts and compares two datetimes
    # that share one tzinfo object by wall clock, which is wrong across a DST change.

    @property
    def seconds(self) -> int:
        return int((self.close.astimezone(UTC) - self.open).total_seconds())

    def contains(self, at: datetime) -> bool:
        instant = at.astimezone(UTC)
        return self.open <= instant < self.close

    def to_json(self) -> dict[str, str]:
        return {"date": self.date.isoformat(), "open": iso(self.open), "close": iso(self.close)}


@dataclass(frozen=True)
class MarketStatus:
    open: bool
    at: datetime
    session: Session | None
    next_open: datetime
    next_close: datetime
    seconds_to_close: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "open": self.open,
            "at": iso(self.at),
            "session": self.session.to_json() if self.session else None,
            "next_open": iso(self.next_open),
            "next_close": iso(self.next_close),
            "seconds_to_close": self.seconds_to_close,
        }


# --- NYSE holiday rules ------------------------------------------------------------------------

_NYSE_MODULE = "holidays.financial.ny_stock_exchange"
_nyse_by_year: dict[int, tuple[frozenset[date], frozenset[date]]] = {}


@cache
def _nyse_class() -> type:
    """holidays' NewYorkStockExchange class, without importing all of holidays.financial.

    ``import holidays.financial.ny_stock_exchange`` first runs ``holidays/financial/__init__``,
    which imports every exchange and, through them, most countries (~150 ms). The NYSE module
    itself needs only holidays' base classes, so load that one file. If a future holidays
    release moves it, fall back to the public API.
    """
    loaded = sys.modules.get(_NYSE_MODULE)
    if loaded is not None:
        return loaded.NewYorkStockExchange
    import importlib.util
    from pathlib import Path

    import holidays

    source = Path(holidays.__file__).parent / "financial" / "ny_stock_exchange.py"
    spec = importlib.util.spec_from_file_location("pipectl._nyse_holidays", source)
    if spec is not None and spec.loader is not None and source.is_file():
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
            return module.NewYorkStockExchange
        except (ImportError, AttributeError):
            pass
    return _nyse_class_via_public_api()


def _nyse_class_via_public_api() -> type:
    import holidays

    return type(holidays.financial_holidays("NYSE"))


def _nyse_year(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(full closures, half days) of one year."""
    cached = _nyse_by_year.get(year)
    if cached is None:
        cls = _nyse_class()
        closed = frozenset(cls(years=year, categories=("public",)).keys())
        half = frozenset(cls(years=year, categories=("half_day",)).keys()) - closed
        cached = _nyse_by_year[year] = (closed, half)
    return cached


# --- the calendar ------------------------------------------------------------------------------


def _check_year(day: date) -> None:
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise BadInput(
            f"{day.isoformat()}: outside the supported market calendar "
            f"({FIRST_YEAR}-01-01 .. {LAST_YEAR}-12-31)"
        )


class MarketCalendar:
    def __init__(self, market: Market) -> None:
        self.market = market
        self.tz = ZoneInfo(market.timezone)

    def _instant(self, day: date, at: time) -> datetime:
        local = datetime.combine(day, at, tzinfo=self.tz)
        # Normalise times that fall into a DST gap to the instant they name.
        return local.astimezone(UTC).astimezone(self.tz)

    def session_on(self, day: date) -> Session | None:
        """The session on a market-local date, or None if the market does not trade that day."""
        if isinstance(day, datetime):
            raise TypeError("session_on takes a date, not a datetime")
        _check_year(day)
        if day.weekday() >= 5:
            return None
        close = self.market.close
        if self.market.calendar == "nyse":
            closed, half = _nyse_year(day.year)
            if day in closed:
                return None
            if day in half:
                close = min(close, HALF_DAY_CLOSE)
                if close <= self.market.open:
                    return None
        return Session(day, self._instant(day, self.market.open), self._instant(day, close))

    def sessions(self, start: date, end: date) -> list[Session]:
        """Sessions on every date from start to end, both inclusive."""
        if start > end:
            raise BadInput(f"start {start.isoformat()} is after end {end.isoformat()}")
        _check_year(start)
        _check_year(end)
        out: list[Session] = []
        day = start
        while day <= end:
            s = self.session_on(day)
            if s is not None:
                out.append(s)
            day += timedelta(days=1)
        return out

    def next_session_after(self, day: date) -> Session:
        """The first session on a date after `day`."""
        probe = day
        for _ in range(_MAX_GAP_DAYS):
            probe += timedelta(days=1)
            if probe.year > LAST_YEAR:
                break
            s = self.session_on(probe)
            if s is not None:
                return s
        raise BadInput(
            f"no trading session known after {day.isoformat()} "
            f"(supported calendar: {FIRST_YEAR}-01-01 .. {LAST_YEAR}-12-31)"
        )

    def status(self, at: datetime) -> MarketStatus:
        """Whether the market is open at `at` (aware), and when it next opens and closes."""
        if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
            raise BadInput(f"{at!r}: needs a UTC offset")
        instant = at.astimezone(UTC)  # compare and subtract in UTC (see Session)
        local = at.astimezone(self.tz)
        session = self.session_on(local.date())
        if session is not None and session.contains(instant):
            following = self.next_session_after(session.date)
            delta = session.close - instant
            whole = delta.days * 86400 + delta.seconds + (1 if delta.microseconds else 0)
            return MarketStatus(
                open=True,
                at=local,
                session=session,
                next_open=following.open,
                next_close=session.close,
                seconds_to_close=whole,
            )
        if session is not None and instant < session.open:
            upcoming = session
        else:
            upcoming = self.next_session_after(local.date())
        return MarketStatus(
            open=False,
            at=local,
            session=session,
            next_open=upcoming.open,
            next_close=upcoming.close,
            seconds_to_close=None,
        )

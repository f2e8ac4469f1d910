"""pipectl.market: NYSE and weekdays sessions, DST, session edges, half days, holidays, limits."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pipectl.config import Market
from pipectl.errors import BadInput
from pipectl.market import (
    FIRST_YEAR,
    LAST_YEAR,
    MarketCalendar,
    Session,
    _nyse_class,
    _nyse_class_via_public_api,
    _nyse_year,
)
from pipectl.timeutil import parse_instant

NY = ZoneInfo("America/New_York")
NYSE = MarketCalendar(Market("America/New_York", time(9, 30), time(16, 0), "nyse"))
WEEKDAYS = MarketCalendar(Market("America/New_York", time(9, 30), time(16, 0), "weekdays"))


def d(text: str) -> date:
    return date.fromisoformat(text)


def at(text: str) -> datetime:
    return parse_instant(text)


def utc(text: str) -> datetime:
    return parse_instant(text).astimezone(UTC)


# --- sessions ----------------------------------------------------------------------------------


def test_regular_session_instants():
    s = NYSE.session_on(d("2026-03-10"))
    assert s == Session(
        d("2026-03-10"),
        datetime(2026, 3, 10, 9, 30, tzinfo=NY),
        datetime(2026, 3, 10, 16, 0, tzinfo=NY),
    )
    assert s.to_json() == {
        "date": "2026-03-10",
        "open": "2026-03-10T09:30:00-04:00",
        "close": "2026-03-10T16:00:00-04:00",
    }
    assert s.seconds == 6 * 3600 + 1800


@pytest.mark.parametrize(
    ("day", "open_utc", "close_utc"),
    [
        ("2026-03-06", "2026-03-06T14:30:00Z", "2026-03-06T21:00:00Z"),  # Fri before DST (EST)
        ("2026-03-09", "2026-03-09T13:30:00Z", "2026-03-09T20:00:00Z"),  # Mon after spring fwd
        ("2026-10-30", "2026-10-30T13:30:00Z", "2026-10-30T20:00:00Z"),  # Fri before fall back
        ("2026-11-02", "2026-11-02T14:30:00Z", "2026-11-02T21:00:00Z"),  # Mon after fall back
        ("2026-11-27", "2026-11-27T14:30:00Z", "2026-11-27T18:00:00Z"),  # half day, EST
        ("2025-07-03", "2025-07-03T13:30:00Z", "2025-07-03T17:00:00Z"),  # half day, EDT
    ],
)
def test_dst_correct_instants(day, open_utc, close_utc):
    s = NYSE.session_on(d(day))
    assert s.open == utc(open_utc) and s.close == utc(close_utc)


@pytest.mark.parametrize("day", ["2026-03-08", "2026-11-01", "2026-03-07", "2026-10-31"])
def test_dst_switch_days_are_weekends(day):
    assert NYSE.session_on(d(day)) is None
    assert WEEKDAYS.session_on(d(day)) is None


@pytest.mark.parametrize(
    "day",
    [
        "2026-01-01",  # New Year's Day
        "2026-01-19",  # Martin Luther King Jr. Day
        "2026-02-16",  # Washington's Birthday
        "2026-04-03",  # Good Friday
        "2026-05-25",  # Memorial Day
        "2026-06-19",  # Juneteenth
        "2026-07-03",  # Independence Day observed (Jul 4 is a Saturday)
        "2026-09-07",  # Labor Day
        "2026-11-26",  # Thanksgiving
        "2026-12-25",  # Christmas
        "2025-01-09",  # National Day of Mourning, President Carter
        "2018-12-05",  # National Day of Mourning, President G. H. W. Bush
        "2012-10-29",  # Hurricane Sandy
        "2012-10-30",  # Hurricane Sandy
        "2001-09-11",  # September 11
        "2001-09-14",
        "2004-06-11",  # President Reagan
        "2007-01-02",  # President Ford
        "2022-06-20",  # Juneteenth observed (Jun 19 is a Sunday)
        "2021-12-24",  # Christmas observed (Dec 25 is a Saturday)
    ],
)
def test_nyse_full_closures(day):
    assert d(day).weekday() < 5
    assert NYSE.session_on(d(day)) is None
    assert WEEKDAYS.session_on(d(day)) is not None


def test_new_year_on_saturday_does_not_close_the_friday_before():
    # NYSE rule: New Year's Day on a Saturday is not moved to Dec 31 (2021-12-31, 2022-01-01).
    assert NYSE.session_on(d("2021-12-31")) is not None


@pytest.mark.parametrize(
    "day", ["2026-11-27", "2026-12-24", "2025-07-03", "2025-11-28", "2025-12-24", "2019-07-03"]
)
def test_nyse_half_days_close_at_13(day):
    s = NYSE.session_on(d(day))
    assert s.open.timetz().replace(tzinfo=None) == time(9, 30)
    assert s.close == datetime.combine(d(day), time(13, 0), tzinfo=NY)
    assert WEEKDAYS.session_on(d(day)).close.hour == 16


def test_2026_nyse_year():
    found = NYSE.sessions(d("2026-01-01"), d("2026-12-31"))
    assert len(found) == 251  # 261 weekdays - 10 holidays
    early = [s.date.isoformat() for s in found if s.close.hour == 13]
    assert early == ["2026-11-27", "2026-12-24"]


@pytest.mark.parametrize(("year", "count"), [(2024, 252), (2025, 250), (2012, 250), (2001, 248)])
def test_nyse_trading_day_counts(year, count):
    assert len(NYSE.sessions(date(year, 1, 1), date(year, 12, 31))) == count


def test_sessions_across_year_boundary():
    got = [s.date.isoformat() for s in NYSE.sessions(d("2025-12-29"), d("2026-01-05"))]
    assert got == ["2025-12-29", "2025-12-30", "2025-12-31", "2026-01-02", "2026-01-05"]
    got = [s.date.isoformat() for s in WEEKDAYS.sessions(d("2025-12-29"), d("2026-01-05"))]
    assert got == [
        "2025-12-29",
        "2025-12-30",
        "2025-12-31",
        "2026-01-01",
        "2026-01-02",
        "2026-01-05",
    ]


def test_sessions_inclusive_and_single_day():
    assert [s.date for s in NYSE.sessions(d("2026-03-09"), d("2026-03-09"))] == [d("2026-03-09")]
    assert NYSE.sessions(d("2026-03-07"), d("2026-03-08")) == []


def test_sessions_reversed_range():
    with pytest.raises(BadInput, match="is after"):
        NYSE.sessions(d("2026-03-10"), d("2026-03-09"))


def test_weekdays_calendar_is_strict_mon_fri():
    found = WEEKDAYS.sessions(d("2026-01-01"), d("2026-12-31"))
    assert len(found) == 261
    assert all(s.date.weekday() < 5 for s in found)
    assert all((s.open.hour, s.open.minute, s.close.hour) == (9, 30, 16) for s in found)


def test_supported_range_limits():
    assert NYSE.session_on(d("2000-01-03")) is not None  # first session of 2000
    assert NYSE.session_on(d("2000-01-01")) is None  # Saturday, in range
    assert [s.date for s in NYSE.sessions(d("2035-12-28"), d("2035-12-31"))] == [
        d("2035-12-28"),
        d("2035-12-31"),
    ]
    for cal in (NYSE, WEEKDAYS):
        with pytest.raises(BadInput, match=r"outside the supported market calendar"):
            cal.session_on(d("1999-12-31"))
        with pytest.raises(BadInput, match=r"2000-01-01 \.\. 2035-12-31"):
            cal.session_on(d("2036-01-02"))
        with pytest.raises(BadInput):
            cal.sessions(d("1999-12-01"), d("2000-01-10"))
        with pytest.raises(BadInput):
            cal.sessions(d("2035-12-01"), d("2036-01-10"))
    assert (FIRST_YEAR, LAST_YEAR) == (2000, 2035)


def test_session_on_refuses_datetime():
    with pytest.raises(TypeError):
        NYSE.session_on(datetime(2026, 3, 9, 10, tzinfo=NY))


# --- status ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "is_open", "seconds_to_close"),
    [
        ("2026-03-10T09:29:59-04:00", False, None),
        ("2026-03-10T09:30:00-04:00", True, 23400),
        ("2026-03-10T15:59:59-04:00", True, 1),
        ("2026-03-10T15:59:59.500-04:00", True, 1),
        ("2026-03-10T15:59:58.200-04:00", True, 2),
        ("2026-03-10T16:00:00-04:00", False, None),
        # DST days, given in UTC
        ("2026-03-09T13:29:59Z", False, None),
        ("2026-03-09T13:30:00Z", True, 23400),
        ("2026-03-09T19:59:59Z", True, 1),
        ("2026-03-09T20:00:00Z", False, None),
        ("2026-11-02T14:29:59Z", False, None),
        ("2026-11-02T14:30:00Z", True, 23400),
        ("2026-11-02T20:59:59Z", True, 1),
        ("2026-11-02T21:00:00Z", False, None),
        # half days
        ("2026-11-27T12:59:59-05:00", True, 1),
        ("2026-11-27T13:00:00-05:00", False, None),
        ("2026-12-24T12:59:59-05:00", True, 1),
        ("2026-12-24T13:00:00-05:00", False, None),
        ("2025-07-03T12:59:59-04:00", True, 1),
        ("2025-07-03T13:00:00-04:00", False, None),
        # holidays and weekends at noon
        ("2026-01-19T12:00:00-05:00", False, None),
        ("2026-04-03T12:00:00-04:00", False, None),
        ("2026-07-03T12:00:00-04:00", False, None),
        ("2025-01-09T12:00:00-05:00", False, None),
        ("2026-03-08T12:00:00-04:00", False, None),
        ("2026-11-01T12:00:00-05:00", False, None),
    ],
)
def test_status_edges(instant, is_open, seconds_to_close):
    st = NYSE.status(at(instant))
    assert st.open is is_open
    assert st.seconds_to_close == seconds_to_close
    assert st.at == at(instant) and st.at.tzinfo == NY


def test_status_before_open_points_at_todays_session():
    st = NYSE.status(at("2026-03-09T13:29:59Z"))
    assert st.session == NYSE.session_on(d("2026-03-09"))
    assert st.next_open == utc("2026-03-09T13:30:00Z")
    assert st.next_close == utc("2026-03-09T20:00:00Z")


def test_status_open_next_open_is_next_trading_day():
    st = NYSE.status(at("2026-04-02T10:00:00-04:00"))  # Thursday before Good Friday
    assert st.open
    assert st.next_close == at("2026-04-02T16:00:00-04:00")
    assert st.next_open == at("2026-04-06T09:30:00-04:00")


def test_status_after_close_friday_across_dst():
    st = NYSE.status(at("2026-03-06T16:00:00-05:00"))
    assert not st.open
    assert st.session.date == d("2026-03-06")
    assert st.next_open == utc("2026-03-09T13:30:00Z")
    assert st.next_close == utc("2026-03-09T20:00:00Z")
    st = NYSE.status(at("2026-10-31T12:00:00-04:00"))
    assert st.session is None
    assert st.next_open == utc("2026-11-02T14:30:00Z")


def test_status_after_half_day():
    st = NYSE.status(at("2026-11-27T13:00:00-05:00"))
    assert st.session.close == at("2026-11-27T13:00:00-05:00")
    assert st.next_open == at("2026-11-30T09:30:00-05:00")
    assert st.next_close == at("2026-11-30T16:00:00-05:00")


def test_status_holiday_and_one_off_closure():
    st = NYSE.status(at("2025-01-09T10:00:00-05:00"))
    assert not st.open and st.session is None
    assert st.next_open == at("2025-01-10T09:30:00-05:00")
    wk = WEEKDAYS.status(at("2025-01-09T10:00:00-05:00"))
    assert wk.open and wk.seconds_to_close == 6 * 3600


def test_status_uses_market_local_date():
    # 02:00Z on Tuesday is still Monday evening in New York.
    st = NYSE.status(at("2026-03-10T02:00:00Z"))
    assert st.session.date == d("2026-03-09")
    assert st.at.date() == d("2026-03-09")
    assert st.next_open == at("2026-03-10T09:30:00-04:00")


def test_status_across_year_boundary():
    st = NYSE.status(at("2026-12-31T16:00:00-05:00"))
    assert st.next_open == at("2027-01-04T09:30:00-05:00")  # 2027-01-01 is a Friday holiday
    st = NYSE.status(at("2026-12-31T15:00:00-05:00"))
    assert st.open and st.next_open == at("2027-01-04T09:30:00-05:00")


def test_status_limits():
    with pytest.raises(BadInput, match="outside the supported"):
        NYSE.status(at("2000-01-01T04:59:59Z"))  # 1999-12-31 in New York
    assert not NYSE.status(at("2000-01-01T05:00:00Z")).open
    st = NYSE.status(at("2035-12-31T09:00:00-05:00"))
    assert st.next_open == at("2035-12-31T09:30:00-05:00")
    with pytest.raises(BadInput, match="no trading session known after 2035-12-31"):
        NYSE.status(at("2035-12-31T16:00:00-05:00"))
    with pytest.raises(BadInput, match="no trading session known after"):
        NYSE.status(at("2035-12-31T10:00:00-05:00"))  # open, but the next open is in 2036


def test_status_naive_refused():
    with pytest.raises(BadInput, match="needs a UTC offset"):
        NYSE.status(datetime(2026, 3, 9, 10, 0))


def test_status_json_shape():
    st = NYSE.status(at("2026-03-09T15:00:00Z"))
    assert st.to_json() == {
        "open": True,
        "at": "2026-03-09T11:00:00-04:00",
        "session": {
            "date": "2026-03-09",
            "open": "2026-03-09T09:30:00-04:00",
            "close": "2026-03-09T16:00:00-04:00",
        },
        "next_open": "2026-03-10T09:30:00-04:00",
        "next_close": "2026-03-09T16:00:00-04:00",
        "seconds_to_close": 18000,
    }
    closed = NYSE.status(at("2026-03-08T12:00:00Z")).to_json()
    assert closed["session"] is None and closed["seconds_to_close"] is None


def test_every_minute_of_a_week_agrees_with_sessions():
    """Brute force: status(t).open iff t is inside one of the week's sessions."""
    sessions = NYSE.sessions(d("2026-11-22"), d("2026-11-29"))
    t = datetime(2026, 11, 22, tzinfo=NY)
    end = datetime(2026, 11, 29, tzinfo=NY)
    while t < end:
        st = NYSE.status(t)
        assert st.open == any(s.open <= t < s.close for s in sessions), t
        assert st.next_open > t and st.next_close > t
        t += timedelta(minutes=7)


# --- other market configurations -------------------------------------------------------------


def test_custom_hours_and_half_day_cap():
    cal = MarketCalendar(Market("America/New_York", time(10, 0), time(12, 30), "nyse"))
    s = cal.session_on(d("2026-11-27"))
    assert (s.open.hour, s.close.hour, s.close.minute) == (10, 12, 30)
    late = MarketCalendar(Market("America/New_York", time(13, 0), time(17, 0), "nyse"))
    assert late.session_on(d("2026-11-27")) is None  # a 13:00 half day leaves nothing
    assert late.session_on(d("2026-11-30")).close.hour == 17


def test_other_timezone_follows_its_own_dst():
    cal = MarketCalendar(Market("Europe/London", time(8, 0), time(16, 30), "weekdays"))
    assert cal.session_on(d("2026-03-27")).open == utc("2026-03-27T08:00:00Z")  # GMT
    assert cal.session_on(d("2026-03-30")).open == utc("2026-03-30T07:00:00Z")  # BST


# --- the holiday source ------------------------------------------------------------------------


def test_nyse_rules_match_the_public_holidays_api():
    """The NYSE class loaded on its own gives exactly what holidays.financial_holidays gives."""
    import holidays

    ref_closed = holidays.financial_holidays(
        "NYSE", categories=("public",), years=range(FIRST_YEAR, LAST_YEAR + 1)
    )
    ref_half = holidays.financial_holidays(
        "NYSE", categories=("half_day",), years=range(FIRST_YEAR, LAST_YEAR + 1)
    )
    for year in range(FIRST_YEAR, LAST_YEAR + 1):
        closed, half = _nyse_year(year)
        assert closed == {x for x in ref_closed if x.year == year}, year
        assert half == {x for x in ref_half if x.year == year} - closed, year


def test_fallback_class_gives_the_same_rules():
    standalone, public = _nyse_class(), _nyse_class_via_public_api()
    assert standalone is not public  # the standalone load did not fall back
    for year in (2001, 2012, 2025, 2026):
        for category in ("public", "half_day"):
            a = standalone(years=year, categories=(category,))
            b = public(years=year, categories=(category,))
            assert (sorted(a) == sorted(b) and len(a) > 0) or category == "half_day"


def test_import_is_light():
    """Importing pipectl.market loads no holiday rules; using it loads only the NYSE ones."""
    code = (
        "import sys, datetime\n"
        "import pipectl.market as m\n"
        "from pipectl.config import Market\n"
        "assert 'holidays' not in sys.modules, 'holidays imported eagerly'\n"
        "cal = m.MarketCalendar(Market('America/New_York', datetime.time(9, 30),"
        " datetime.time(16), 'nyse'))\n"
        "cal.status(datetime.datetime(2026, 3, 9, 14, tzinfo=datetime.UTC))\n"
        "assert 'holidays' in sys.modules\n"
        "assert 'holidays.financial' not in sys.modules, 'all exchanges imported'\n"
        "assert 'holidays.countries' not in sys.modules, 'all countries imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# exchange_calendars 4.13 trips a pandas 3.1 deprecation inside its own code
@pytest.mark.filterwarnings("ignore:Series.values returning an ndarray")
def test_agrees_with_exchange_calendars_xnys_2000_2035():
    """Independent oracle: every XNYS session open and close 2000-2035 (9,049 sessions)."""
    xcals = pytest.importorskip("exchange_calendars")
    xnys = xcals.get_calendar("XNYS", start=f"{FIRST_YEAR}-01-01", end=f"{LAST_YEAR}-12-31")
    theirs = {
        ts.date(): (xnys.session_open(ts).to_pydatetime(), xnys.session_close(ts).to_pydatetime())
        for ts in xnys.sessions
    }
    ours = {
        s.date: (s.open, s.close)
        for s in NYSE.sessions(date(FIRST_YEAR, 1, 1), date(LAST_YEAR, 12, 31))
    }
    assert sorted(set(ours) ^ set(theirs)) == []
    assert [day for day in sorted(ours) if ours[day] != theirs[day]] == []
    assert len(ours) > 9000

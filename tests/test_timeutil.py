from datetime import UTC, datetime, timedelta, timezone

import pytest
from pipectl.errors import BadInput
from pipectl.timeutil import (
    humanize_seconds,
    iso,
    iso_utc_micro,
    parse_duration,
    parse_instant,
    utc_now,
)


def test_utc_now_is_aware_utc():
    now = utc_now()
    assert now.utcoffset() == timedelta(0)
    assert abs((datetime.now(UTC) - now).total_seconds()) < 5


@pytest.mark.parametrize(
    ("text", "expected_utc"),
    [
        ("2026-03-09T13:30:00Z", datetime(2026, 3, 9, 13, 30, tzinfo=UTC)),
        ("2026-03-09T09:30:00-04:00", datetime(2026, 3, 9, 13, 30, tzinfo=UTC)),
        ("2026-03-09T13:30:00+00:00", datetime(2026, 3, 9, 13, 30, tzinfo=UTC)),
        ("2026-03-09T14:30:00.250+01:00", datetime(2026, 3, 9, 13, 30, 0, 250000, tzinfo=UTC)),
        ("  2026-11-02T14:30:00Z ", datetime(2026, 11, 2, 14, 30, tzinfo=UTC)),
    ],
)
def test_parse_instant(text, expected_utc):
    parsed = parse_instant(text)
    assert parsed.tzinfo is not None
    assert parsed == expected_utc


def test_parse_instant_keeps_offset():
    assert parse_instant("2026-03-09T09:30:00-04:00").utcoffset() == timedelta(hours=-4)


@pytest.mark.parametrize("text", ["2026-03-09T09:30:00", "2026-03-09", "2026-03-09 09:30"])
def test_parse_instant_naive_needs_offset(text):
    with pytest.raises(BadInput, match="needs a UTC offset"):
        parse_instant(text)


@pytest.mark.parametrize("text", ["", "   ", "now", "2026-13-01T00:00:00Z", "09:30", "tomorrow Z"])
def test_parse_instant_garbage(text):
    with pytest.raises(BadInput, match="not an ISO 8601 instant"):
        parse_instant(text)


def test_iso_seconds_precision_with_offset():
    dt = datetime(2026, 3, 9, 9, 30, 5, 999999, tzinfo=timezone(timedelta(hours=-4)))
    assert iso(dt) == "2026-03-09T09:30:05-04:00"
    assert iso(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00+00:00"


def test_iso_utc_micro():
    dt = datetime(2026, 3, 9, 9, 30, 0, 5, tzinfo=timezone(timedelta(hours=-4)))
    assert iso_utc_micro(dt) == "2026-03-09T13:30:00.000005Z"
    assert iso_utc_micro(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"


@pytest.mark.parametrize("fn", [iso, iso_utc_micro])
def test_formatters_refuse_naive(fn):
    with pytest.raises(ValueError, match="aware"):
        fn(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600),
        ("30m", 1800),
        ("45s", 45),
        ("1h30m", 5400),
        ("2h0m10s", 7210),
        ("1.5h", 5400),
        ("90m", 5400),
        ("0s", 0),
        ("+1h", 3600),
        ("30m1h", 5400),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", "1", "h", "1d", "1 h", "1h 30m", "1hour", "1h30", "ms", "1.h", "++1h", 3600]
)
def test_parse_duration_bad(text):
    with pytest.raises(BadInput, match="not a duration"):
        parse_duration(text)


def test_parse_duration_negative():
    with pytest.raises(BadInput, match="must not be negative"):
        parse_duration("-1h")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (1, "1s"),
        (0.2, "1s"),
        (59, "59s"),
        (59.2, "1m"),
        (60, "1m"),
        (61, "1m 1s"),
        (3600, "1h"),
        (7980, "2h 13m"),
        (7999, "2h 13m"),
        (23400, "6h 30m"),
        (86400, "1d"),
        (90061, "1d 1h"),
        (3 * 86400 + 17 * 3600 + 30 * 60, "3d 17h"),
    ],
)
def test_humanize_seconds(seconds, text):
    assert humanize_seconds(seconds) == text


def test_humanize_negative():
    with pytest.raises(ValueError):
        humanize_seconds(-1)

"""`pipectl market sessions|status`: the exact CLI contract (JSON shapes, exit codes)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pipectl.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "pipeline.yaml"


def run(capsys, *args: str, config: Path = CONFIG) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(["--repo", str(REPO), "--config", str(config), "market", *args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.fixture
def weekdays_config(tmp_path: Path) -> Path:
    text = CONFIG.read_text(encoding="utf-8")
    assert "calendar: nyse" in text
    path = tmp_path / "pipeline.yaml"
    path.write_text(text.replace("calendar: nyse", "calendar: weekdays"), encoding="utf-8")
    return path


# --- sessions --------------------------------------------------------------------------------


def test_sessions_json_half_day_and_holiday(capsys):
    code, out, err = run(capsys, "sessions", "--from", "2026-11-25", "--to", "2026-11-30", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == [
        {
            "date": "2026-11-25",
            "open": "2026-11-25T09:30:00-05:00",
            "close": "2026-11-25T16:00:00-05:00",
        },
        {
            "date": "2026-11-27",
            "open": "2026-11-27T09:30:00-05:00",
            "close": "2026-11-27T13:00:00-05:00",
        },
        {
            "date": "2026-11-30",
            "open": "2026-11-30T09:30:00-05:00",
            "close": "2026-11-30T16:00:00-05:00",
        },
    ]


def test_sessions_json_across_dst_and_year(capsys):
    code, out, _ = run(capsys, "sessions", "--from", "2026-03-06", "--to", "2026-03-09", "--json")
    assert code == 0
    assert [(s["date"], s["open"]) for s in json.loads(out)] == [
        ("2026-03-06", "2026-03-06T09:30:00-05:00"),
        ("2026-03-09", "2026-03-09T09:30:00-04:00"),
    ]
    code, out, _ = run(capsys, "sessions", "--from", "2025-12-31", "--to", "2026-01-02", "--json")
    assert [s["date"] for s in json.loads(out)] == ["2025-12-31", "2026-01-02"]


def test_sessions_json_empty(capsys):
    code, out, _ = run(capsys, "sessions", "--from", "2026-03-07", "--to", "2026-03-08", "--json")
    assert code == 0 and json.loads(out) == []


def test_sessions_text(capsys):
    code, out, _ = run(capsys, "sessions", "--from", "2026-11-25", "--to", "2026-11-30")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["DATE", "DAY", "OPEN", "CLOSE", "UTC", "NOTE"]
    assert lines[1].split() == ["2026-11-25", "Wed", "09:30", "16:00", "-05:00"]
    assert lines[2].split() == ["2026-11-27", "Fri", "09:30", "13:00", "-05:00", "early", "close"]
    assert lines[3].split()[0] == "2026-11-30"
    assert lines[-1] == "3 session(s) from 2026-11-25 to 2026-11-30 (nyse, America/New_York)"


def test_sessions_weekdays_config(capsys, weekdays_config):
    code, out, _ = run(
        capsys,
        "sessions",
        "--from",
        "2026-01-19",
        "--to",
        "2026-01-19",
        "--json",
        config=weekdays_config,
    )
    assert code == 0 and [s["date"] for s in json.loads(out)] == ["2026-01-19"]
    code, out, _ = run(capsys, "sessions", "--from", "2026-01-19", "--to", "2026-01-19", "--json")
    assert json.loads(out) == []


def test_sessions_longest_allowed_range(capsys):
    start = date(2020, 1, 1)
    end = start + timedelta(days=3660)
    code, out, _ = run(capsys, "sessions", "--from", str(start), "--to", str(end), "--json")
    assert code == 0
    found = json.loads(out)
    assert found[0]["date"] == "2020-01-02" and found[-1]["date"] <= str(end)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--from", "2026-12-01", "--to", "2026-11-01"], "--from 2026-12-01 is after --to"),
        (["--from", "2020-01-01", "--to", "2030-01-09"], "range longer than 3660 days"),
        (["--from", "2026-02-30", "--to", "2026-03-01"], "--from '2026-02-30': not a valid date"),
        (["--from", "2026/01/01", "--to", "2026-03-01"], "expected a date YYYY-MM-DD"),
        (["--from", "2026-01-01", "--to", "20260301"], "--to '20260301': expected a date"),
        (["--from", "2026-01-01", "--to", "2026-01-01T00:00"], "expected a date YYYY-MM-DD"),
        (["--from", "1999-12-20", "--to", "2000-01-05"], "outside the supported market"),
        (["--from", "2035-12-20", "--to", "2036-01-05"], "outside the supported market"),
    ],
)
def test_sessions_bad_input(capsys, args, fragment):
    code, out, err = run(capsys, "sessions", *args, "--json")
    assert code == 2
    assert out == ""
    assert err.startswith("pipectl: error: ") and fragment in err
    assert err.count("\n") == 1


def test_sessions_missing_option_is_usage_error(capsys):
    code, out, err = run(capsys, "sessions", "--from", "2026-01-01")
    assert code == 2 and out == "" and "--to" in err


# --- status ----------------------------------------------------------------------------------


def test_status_json_open_on_dst_monday(capsys):
    code, out, err = run(capsys, "status", "--at", "2026-03-09T13:30:00Z", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "open": True,
        "at": "2026-03-09T09:30:00-04:00",
        "session": {
            "date": "2026-03-09",
            "open": "2026-03-09T09:30:00-04:00",
            "close": "2026-03-09T16:00:00-04:00",
        },
        "next_open": "2026-03-10T09:30:00-04:00",
        "next_close": "2026-03-09T16:00:00-04:00",
        "seconds_to_close": 23400,
    }


@pytest.mark.parametrize(
    ("instant", "is_open", "stc", "next_open"),
    [
        ("2026-11-02T14:29:59Z", False, None, "2026-11-02T09:30:00-05:00"),
        ("2026-11-02T14:30:00Z", True, 23400, "2026-11-03T09:30:00-05:00"),
        ("2026-03-09T15:59:59-04:00", True, 1, "2026-03-10T09:30:00-04:00"),
        ("2026-03-09T16:00:00-04:00", False, None, "2026-03-10T09:30:00-04:00"),
        ("2026-12-24T12:59:59-05:00", True, 1, "2026-12-28T09:30:00-05:00"),
        ("2026-12-24T13:00:00-05:00", False, None, "2026-12-28T09:30:00-05:00"),
        ("2026-04-03T11:00:00-04:00", False, None, "2026-04-06T09:30:00-04:00"),
        ("2026-03-08T12:00:00-04:00", False, None, "2026-03-09T09:30:00-04:00"),
    ],
)
def test_status_json_edges(capsys, instant, is_open, stc, next_open):
    code, out, _ = run(capsys, "status", "--at", instant, "--json")
    assert code == 0
    got = json.loads(out)
    assert set(got) == {"open", "at", "session", "next_open", "next_close", "seconds_to_close"}
    assert (got["open"], got["seconds_to_close"], got["next_open"]) == (is_open, stc, next_open)


def test_status_weekdays_config(capsys, weekdays_config):
    args = ("status", "--at", "2026-04-03T11:00:00-04:00", "--json")
    code, out, _ = run(capsys, *args, config=weekdays_config)
    assert code == 0 and json.loads(out)["open"] is True
    code, out, _ = run(capsys, *args)
    assert json.loads(out)["open"] is False


def test_status_text(capsys):
    code, out, _ = run(capsys, "status", "--at", "2026-03-09T13:30:00Z")
    assert code == 0
    assert out.splitlines()[0] == "market OPEN (nyse, America/New_York)"
    assert "closes in   6h 30m" in out
    assert "next open   2026-03-10T09:30:00-04:00" in out
    code, out, _ = run(capsys, "status", "--at", "2026-03-07T12:00:00-05:00")
    assert out.splitlines()[0] == "market CLOSED (nyse, America/New_York)"
    assert "session     none on 2026-03-07 (Saturday)" in out
    assert "opens in    1d 20h" in out  # Sat 12:00 EST -> Mon 09:30 EDT is 44.5 h


def test_status_default_is_now(capsys):
    before = datetime.now(UTC).replace(microsecond=0)
    code, out, _ = run(capsys, "status", "--json")
    after = datetime.now(UTC)
    assert code == 0
    got = json.loads(out)
    assert before <= datetime.fromisoformat(got["at"]) <= after
    assert datetime.fromisoformat(got["next_close"]) > before


@pytest.mark.parametrize(
    ("instant", "fragment"),
    [
        ("2026-03-09T09:30:00", "needs a UTC offset"),
        ("2026-03-09", "needs a UTC offset"),
        ("soon", "not an ISO 8601 instant"),
        ("1999-06-01T12:00:00Z", "outside the supported market calendar"),
        ("2035-12-31T17:00:00-05:00", "no trading session known after 2035-12-31"),
    ],
)
def test_status_bad_input(capsys, instant, fragment):
    code, out, err = run(capsys, "status", "--at", instant, "--json")
    assert code == 2 and out == ""
    assert err.startswith("pipectl: error: ") and fragment in err


def test_invalid_config_is_reported_with_file_and_key(capsys, tmp_path):
    bad = tmp_path / "pipeline.yaml"
    bad.write_text(
        CONFIG.read_text(encoding="utf-8").replace("calendar: nyse", "calendar: lse"),
        encoding="utf-8",
    )
    code, out, err = run(capsys, "status", "--json", config=bad)
    assert code == 2 and out == ""
    assert err == f"pipectl: error: {bad}: market.calendar: unknown calendar 'lse' " + (
        "(expected one of: nyse, weekdays)\n"
    )


def test_fresh_process_entry_point(tmp_path):
    exe = shutil.which("pipectl")
    if exe is None:
        pytest.fail("pipectl console script not on PATH (pip install -e .)")
    out = subprocess.run(
        [exe, "--repo", str(REPO), "market", "status", "--at", "2026-11-27T17:59:59Z", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["open"] is True and got["seconds_to_close"] == 1
    bad = subprocess.run(
        [exe, "--repo", str(REPO), "market", "sessions", "--from", "2026-02-01", "--to", "x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("pipectl: error: --to 'x'")

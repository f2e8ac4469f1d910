"""Benchmark: is the market open at T? `pipectl market status` vs exchange_calendars.

Both sides run as fresh processes (that is how Kargo's gate call and CI use them):
- pipectl:  `pipectl --repo <repo> market status --at T --json`
- baseline: a fresh Python that builds exchange_calendars' XNYS and asks `is_open_at_time(T)`
Also measures in-process `MarketCalendar.status()` calls per second.

    python tests/bench/bench_market.py            # 15 runs per side
    python tests/bench/bench_market.py --smoke    # 3 runs per side (CI)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AT = "2026-11-27T17:59:59Z"  # half day, one second before the 13:00 close
BASELINE = (
    "import sys, exchange_calendars as xc, pandas as pd\n"
    "cal = xc.get_calendar('XNYS')\n"
    "print(bool(cal.is_open_at_time(pd.Timestamp(sys.argv[1]))))\n"
)


def fresh(cmd: list[str], runs: int) -> tuple[float, str]:
    times = []
    out = ""
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120)
        times.append(time.perf_counter() - start)
        out = done.stdout
    return statistics.median(times), out


def in_process(seconds: float) -> float:
    from pipectl.config import load_config
    from pipectl.market import MarketCalendar

    cal = MarketCalendar(load_config(REPO / "pipeline.yaml").market)
    t = datetime(2026, 1, 1, tzinfo=UTC)
    n = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        cal.status(t)
        t += timedelta(minutes=17)
        n += 1
    return n / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="few runs, for CI")
    args = parser.parse_args()
    runs = 3 if args.smoke else 15

    exe = shutil.which("pipectl") or sys.exit("pipectl not on PATH (pip install -e .)")
    ours_s, ours_out = fresh(
        [exe, "--repo", str(REPO), "market", "status", "--at", AT, "--json"], runs
    )
    ours_open = json.loads(ours_out)["open"]
    print(f"pipectl market status (fresh process): median {ours_s * 1000:.0f} ms, open={ours_open}")

    try:
        import exchange_calendars  # noqa: F401
    except ImportError:
        print("exchange_calendars not installed (pip install -e '.[bench]'): no baseline")
        base_s = None
    else:
        base_s, base_out = fresh([sys.executable, "-c", BASELINE, AT], runs)
        base_open = base_out.strip() == "True"
        print(
            f"exchange_calendars is_open_at_time (fresh process): median {base_s * 1000:.0f} ms,"
            f" open={base_open}"
        )
        if base_open != ours_open:
            print("MISMATCH: the two answers differ")
            return 1
        print(f"ratio pipectl/exchange_calendars: {ours_s / base_s:.2f}x (goal <= 0.5x)")

    rate = in_process(0.3 if args.smoke else 2.0)
    print(f"MarketCalendar.status in process: {rate:,.0f} calls/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: may tag T go to paper at instant A? `pipectl gate --json` vs exchange_calendars.

Both sides run as fresh processes, alternating (that is how CI and scripts ask):
- pipectl:  `pipectl --repo R --audit-log L gate --stage paper --tag T --at A --json` -- loads
            pipeline.yaml, reads an audit log of --log-entries entries (grants, approvals,
            inttest results, gate decisions), applies every rule;
- baseline: a fresh Python that builds exchange_calendars' XNYS calendar and answers only
            the market half of the question with `is_open_at_time(A)`.
The two must agree on whether the market is open at every instant asked (session edges,
DST, a half day, a holiday); the script fails if they do not. Goal: pipectl <= 0.5x baseline.
Also times in-process `gate.decide()` calls. exchange_calendars is a bench extra
(pyproject `[bench]`); without it the script says so and skips the baseline half.

    python tests/bench/bench_gate.py            # 15 runs per side
    python tests/bench/bench_gate.py --smoke    # 3 runs per side (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TAG = "0123abc"
INSTANTS = [
    "2026-03-09T13:29:59Z",  # Mon 09:29:59 EDT, first weekday after the DST change
    "2026-03-09T13:30:00Z",  # 09:30:00 EDT
    "2026-03-09T19:59:59Z",  # 15:59:59 EDT
    "2026-03-09T20:00:00Z",  # 16:00:00 EDT
    "2026-11-27T17:59:59Z",  # half day 12:59:59 EST
    "2026-11-27T18:00:00Z",  # half day 13:00:00 EST
    "2026-11-26T16:00:00Z",  # Thanksgiving
    "2026-11-02T14:30:00Z",  # Mon 09:30 EST after the DST end
]
BASELINE = (
    "import sys, exchange_calendars as xc, pandas as pd\n"
    "cal = xc.get_calendar('XNYS')\n"
    "print(bool(cal.is_open_at_time(pd.Timestamp(sys.argv[1]))))\n"
)


def have_exchange_calendars() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import exchange_calendars, pandas"], capture_output=True
    )
    return probe.returncode == 0


def setup(root: Path, entries: int) -> tuple[Path, Path]:
    """A repo dir with pipeline.yaml and an audit log of realistic entries."""
    from pipectl.audit import AuditLog

    repo = root / "repo"
    repo.mkdir()
    shutil.copy2(REPO / "pipeline.yaml", repo / "pipeline.yaml")
    log_path = root / "audit.jsonl"
    start = datetime(2026, 1, 5, 15, tzinfo=UTC)
    step = timedelta(minutes=7)
    clock_state = {"now": start}

    def clock() -> datetime:
        clock_state["now"] += step
        return clock_state["now"]

    log = AuditLog(log_path, clock=clock)
    kinds = ["gate.blocked", "gate.allowed", "inttest.passed", "approval.granted"]
    with log.transaction() as txn:
        for i in range(entries):
            tag = f"{i:07x}"
            action = kinds[i % len(kinds)]
            txn.append(
                action=action,
                actor="bench@example.com",
                stage="live" if action == "approval.granted" else "paper",
                tag=tag,
                notes="reviewed" if action == "approval.granted" else None,
                details={"reasons": [], "source": "bench"} if action.startswith("gate") else {},
            )
    return repo, log_path


def run_pipectl(repo: Path, log_path: Path, at: str) -> tuple[float, dict]:
    argv = [
        sys.executable, "-m", "pipectl.cli", "--repo", str(repo), "--audit-log", str(log_path),
        "--actor", "bench", "gate", "--stage", "paper", "--tag", TAG, "--at", at, "--json",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPECTL_")}
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if done.returncode not in (0, 3):
        raise SystemExit(f"pipectl gate failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed, json.loads(done.stdout)


def run_baseline(at: str) -> tuple[float, bool]:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", BASELINE, at], capture_output=True, text=True, check=True
    )
    return time.perf_counter() - t0, done.stdout.strip() == "True"


def summary(name: str, times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return (
        f"{name:<28} n={len(ms):<3} median {statistics.median(ms):7.1f} ms   "
        f"mean {statistics.mean(ms):7.1f} ms   min {min(ms):7.1f} ms"
    )


def in_process_rate(repo: Path, log_path: Path, seconds: float) -> float:
    from pipectl import gate
    from pipectl.audit import AuditLog
    from pipectl.config import load_config
    from pipectl.market import MarketCalendar
    from pipectl.timeutil import parse_instant

    config = load_config(repo / "pipeline.yaml")
    calendar = MarketCalendar(config.market)
    entries = AuditLog(log_path).entries()
    at = parse_instant(INSTANTS[1])
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        gate.decide(config, calendar, entries, "paper", TAG, at)
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="3 runs per side")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--log-entries", type=int, default=2000)
    args = parser.parse_args()
    runs = 3 if args.smoke else args.runs

    baseline_ok = have_exchange_calendars()
    with tempfile.TemporaryDirectory() as tmp:
        repo, log_path = setup(Path(tmp), args.log_entries)
        t_pipectl: list[float] = []
        t_base: list[float] = []
        disagreements = []
        for i in range(runs):
            at = INSTANTS[i % len(INSTANTS)]
            elapsed, doc = run_pipectl(repo, log_path, at)
            t_pipectl.append(elapsed)
            if doc["allowed"] is doc["market_open"]:
                raise SystemExit(f"pipectl: paper allowed={doc['allowed']} while open at {at}")
            if baseline_ok:
                elapsed, is_open = run_baseline(at)
                t_base.append(elapsed)
                if is_open != doc["market_open"]:
                    disagreements.append((at, doc["market_open"], is_open))
        rate = in_process_rate(repo, log_path, 0.5 if args.smoke else 2.0)

    print(f"audit log: {args.log_entries} entries; instants: session edges, DST, half day")
    print(summary("pipectl gate --json", t_pipectl))
    print(f"gate.decide() in-process      {rate:,.0f} decisions/s")
    if not baseline_ok:
        print("exchange_calendars is not importable: baseline skipped "
              "(pip install 'pipectl[bench]' or exchange_calendars)")  # fmt: skip
        return 0
    print(summary("exchange_calendars (python)", t_base))
    ratio = statistics.median(t_pipectl) / statistics.median(t_base)
    verdict = "meets" if ratio <= 0.5 else "MISSES"
    print(f"pipectl / exchange_calendars: {ratio:.2f}x (median; goal <= 0.5x: {verdict})")
    if disagreements:
        for at, ours, theirs in disagreements:
            print(f"DISAGREE at {at}: pipectl open={ours}, exchange_calendars open={theirs}")
        return 1
    print("market open/closed: pipectl and exchange_calendars agree on every instant asked")
    return 0


if __name__ == "__main__":
    sys.exit(main())

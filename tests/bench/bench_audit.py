"""Benchmark: audit log appends per second (each one lock + O_APPEND write + fsync) and
`audit verify` entries per second on a large log (goal >= 100k entries/s).

- appends: N one-entry transactions in one process (the console's path), then 4 processes
  appending to one log at once (lock contention); the chain must verify afterwards;
- verify: a log of --entries entries (written through AuditLog in one transaction), checked
  in-process (`AuditLog.verify()`) and as a fresh process (`pipectl audit verify --json`,
  interpreter start included).

    python tests/bench/bench_audit.py            # 2,000 appends, 100k entries
    python tests/bench/bench_audit.py --smoke    # 200 appends, 20k entries (CI)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_VERIFY = 100_000


def _details(i: int) -> dict:
    return {"reasons": ["market is open until 16:00 America/New_York"], "source": "kargo",
            "promotion": f"paper.{i:08x}", "break_glass": None, "market_open": True}  # fmt: skip


def bench_appends(path: Path, n: int) -> float:
    from pipectl.audit import AuditLog

    log = AuditLog(path)
    t0 = time.perf_counter()
    for i in range(n):
        log.append(
            action="gate.blocked",
            actor="kargo",
            stage="paper",
            tag="0123abc",
            details=_details(i),
        )
    return n / (time.perf_counter() - t0)


def _worker(path: str, n: int) -> None:
    from pipectl.audit import AuditLog

    log = AuditLog(path)
    for i in range(n):
        log.append(action="gate.allowed", actor=f"w{os.getpid()}", details=_details(i))


def bench_concurrent(path: Path, procs: int, n: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_worker, args=(str(path), n)) for _ in range(procs)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    if any(w.exitcode != 0 for w in workers):
        raise SystemExit("an appending worker failed")
    return procs * n / elapsed  # includes the workers' interpreter start


def build_log(path: Path, n: int) -> None:
    from pipectl.audit import AuditLog

    with AuditLog(path).transaction() as txn:
        for i in range(n):
            txn.append(
                action="gate.blocked",
                actor="kargo",
                stage="paper",
                tag=f"{i:07x}",
                details=_details(i),
            )


def verify_in_process(path: Path, repeats: int) -> tuple[float, int]:
    from pipectl.audit import AuditLog

    rates = []
    entries = 0
    for _ in range(repeats):
        log = AuditLog(path)
        t0 = time.perf_counter()
        result = log.verify()
        rates.append(result.entries / (time.perf_counter() - t0))
        if not result.ok:
            raise SystemExit(f"verify failed: {result}")
        entries = result.entries
    return statistics.median(rates), entries


def verify_process(path: Path, repeats: int) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPECTL_")}
    argv = [sys.executable, "-m", "pipectl.cli", "--repo", str(Path(__file__).parents[2]),
            "--audit-log", str(path), "audit", "verify", "--json"]  # fmt: skip
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=env)
        elapsed = time.perf_counter() - t0
        doc = json.loads(done.stdout)
        if done.returncode != 0 or not doc["ok"]:
            raise SystemExit(f"pipectl audit verify failed: {done.stdout} {done.stderr}")
        rates.append(doc["entries"] / elapsed)
    return statistics.median(rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes for CI")
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    appends = 200 if args.smoke else args.appends
    entries = 20_000 if args.smoke else args.entries
    repeats = 1 if args.smoke else 3

    from pipectl.audit import AuditLog

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rate = bench_appends(root / "appends.jsonl", appends)
        print(f"appends (1 process, fsync each)  {rate:10,.0f} appends/s  ({appends} appends)")
        per = max(appends // 4, 10)
        crate = bench_concurrent(root / "appends.jsonl", 4, per)
        result = AuditLog(root / "appends.jsonl").verify()
        print(
            f"appends (4 processes, one log)   {crate:10,.0f} appends/s  ({4 * per} appends, "
            f"process start included); chain verifies: {result.ok} ({result.entries} entries)"
        )
        if not result.ok:
            return 1

        big = root / "big.jsonl"
        t0 = time.perf_counter()
        build_log(big, entries)
        size_mb = big.stat().st_size / 1e6
        print(f"built {entries:,} entries ({size_mb:.1f} MB) in {time.perf_counter() - t0:.1f} s")
        vrate, n = verify_in_process(big, repeats)
        prate = verify_process(big, repeats)
        print(f"verify in-process                {vrate:10,.0f} entries/s  ({n:,} entries)")
        print(f"pipectl audit verify (process)   {prate:10,.0f} entries/s  (start included)")
        verdict = "meets" if vrate >= GOAL_VERIFY else "MISSES"
        print(f"goal >= {GOAL_VERIFY:,} entries/s verified: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

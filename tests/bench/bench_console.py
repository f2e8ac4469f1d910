"""Benchmark: the console's gate endpoint (`GET /api/v1/gate`) as Kargo calls it.

One console process ("one worker": `ThreadingHTTPServer`, the same code as `pipectl serve`)
on 127.0.0.1, a temp repository (copies of pipeline.yaml, apps/, gitops/) and a temp audit log
pre-filled with N entries. The client runs in a separate process over ONE keep-alive
connection with a Bearer kargo token, so every request pays for: token check, routing, query
validation, an exclusive audit transaction (lock, read what was appended since the last call,
decide, append `gate.allowed`/`gate.blocked`, one write + fsync) and the JSON answer.
Every request is a recorded decision; nothing is served from a cache.

Figures: p50 / p99 latency and requests/s (sequential, one connection), for the market
closed (allowed) and open (blocked), plus requests/s with 4 concurrent connections.
Goal (issue #6): p50 <= 5 ms and >= 500 requests/s.

    python tests/bench/bench_console.py            # 3000 requests per run, 20k-entry log
    python tests/bench/bench_console.py --smoke    # 300 requests, 1k-entry log (CI)
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOKEN = "bench-kargo-token-0123456789abcdef"
TAG = "0123abc"
# The clock only moves forward, as on the cluster: history first, then the closed run, then
# the open run the next morning.
CLOSED = datetime(2026, 8, 13, 21, 0, tzinfo=UTC)  # Thu 17:00 EDT
OPEN = datetime(2026, 8, 14, 15, 0, tzinfo=UTC)  # Fri 11:00 EDT
HISTORY = timedelta(days=60)  # the prefilled entries are spread over the 60 days before


def setup(root: Path, prefill: int) -> tuple[Path, Path, Path]:
    repo = root / "repo"
    repo.mkdir()
    shutil.copy2(REPO / "pipeline.yaml", repo / "pipeline.yaml")
    for tree in ("apps", "gitops"):
        if (REPO / tree).is_dir():
            shutil.copytree(REPO / tree, repo / tree)
    (repo / ".gitignore").write_text(".pipectl/\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(
            ["git", "-c", "user.email=b@example.com", "-c", "user.name=bench", *args],
            cwd=repo,
            check=True,
            capture_output=True,
        )
    token = root / "kargo-token"
    token.write_text(TOKEN + "\n")
    audit = root / "audit.jsonl"
    from pipectl.audit import AuditLog

    start = CLOSED - HISTORY
    step = HISTORY / max(prefill + 1, 1)
    stamp = [start]
    log = AuditLog(audit, clock=lambda: stamp[0])
    with log.transaction() as txn:  # one write for the whole prefill
        for i in range(prefill):
            stamp[0] = start + i * step
            tag = f"{i:07x}"
            txn.append(
                action="inttest.passed" if i % 3 else "gate.allowed",
                actor="bench",
                stage="integration-test" if i % 3 else "paper",
                tag=tag,
                details={"passed": 10, "failed": 0, "errors": 0, "skipped": 0, "total": 10},
            )
        stamp[0] = CLOSED - step
        txn.append(action="inttest.passed", actor="bench", stage="integration-test", tag=TAG)
    return repo, audit, token


def serve(repo: Path, audit: Path, token: Path, clock_iso, port_q) -> None:
    """The console process: the same objects `pipectl serve` builds."""
    from pipectl.console.api import ConsoleAPI
    from pipectl.console.server import make_server

    def clock() -> datetime:  # the benchmark moves it between runs
        return datetime.fromisoformat(clock_iso.value.decode())

    api = ConsoleAPI(repo=repo, config_path=None, audit_path=audit, clock=clock)
    server = make_server(api, host="127.0.0.1", port=0, kargo_token_file=token, access_log=False)
    port_q.put(server.server_address[1])
    server.serve_forever()


def run(port: int, n: int, stage: str, prefix: str) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    times = []
    for i in range(n):
        path = f"/api/v1/gate?stage={stage}&tag={TAG}&promotion={prefix}.{i}&actor=admin"
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        times.append(time.perf_counter() - t0)
        if r.status != 200:
            raise SystemExit(f"HTTP {r.status}: {body[:200]!r}")
    conn.close()
    return times


def concurrent(port: int, n: int, workers: int) -> float:
    per = n // workers
    threads = [
        threading.Thread(target=run, args=(port, per, "paper", f"paper.c{w}"))
        for w in range(workers)
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per * workers / (time.perf_counter() - t0)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(name: str, times: list[float]) -> dict:
    out = {
        "run": name,
        "requests": len(times),
        "p50_ms": round(pct(times, 50) * 1000, 3),
        "p99_ms": round(pct(times, 99) * 1000, 3),
        "mean_ms": round(statistics.fmean(times) * 1000, 3),
        "req_per_s": round(len(times) / sum(times), 1),
    }
    print(json.dumps(out))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a quick run for CI")
    parser.add_argument("--requests", type=int)
    parser.add_argument("--prefill", type=int)
    args = parser.parse_args()
    n = args.requests or (300 if args.smoke else 3000)
    prefill = args.prefill if args.prefill is not None else (1000 if args.smoke else 20000)

    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        root = Path(tmp)
        repo, audit, token = setup(root, prefill)
        ctx = mp.get_context("fork")
        clock_iso = ctx.Array("c", 64)
        clock_iso.value = CLOSED.isoformat().encode()
        port_q = ctx.Queue()
        proc = ctx.Process(target=serve, args=(repo, audit, token, clock_iso, port_q), daemon=True)
        proc.start()
        try:
            port = port_q.get(timeout=60)
            run(port, 50, "paper", "paper.warmup")  # imports, calendar, first parse of the log
            print(json.dumps({"prefilled_entries": prefill, "python": sys.version.split()[0]}))
            closed = report("market closed (allowed)", run(port, n, "paper", "paper.closed"))
            clock_iso.value = OPEN.isoformat().encode()
            opened = report("market open (blocked)", run(port, n, "paper", "paper.open"))
            rps4 = concurrent(port, n, 4)
            print(json.dumps({"run": "4 connections", "req_per_s": round(rps4, 1)}))
        finally:
            proc.terminate()
            proc.join(timeout=10)
        lines = audit.read_bytes().count(b"\n")
        expected = prefill + 1 + 50 + 2 * n + (n // 4) * 4
        if lines != expected:
            print(f"audit log has {lines} lines, expected {expected}", file=sys.stderr)
            return 1
        from pipectl.audit import AuditLog

        verify = AuditLog(audit).verify()
        print(json.dumps({"audit_entries": lines, "verify_ok": verify.ok}))
        if not verify.ok:
            return 1
    worst = max(closed["p50_ms"], opened["p50_ms"])
    slowest = min(closed["req_per_s"], opened["req_per_s"])
    ok = worst <= 5.0 and slowest >= 500
    print(
        json.dumps(
            {"goal": "p50 <= 5 ms, >= 500 req/s", "met": ok, "p50_ms": worst, "req_per_s": slowest}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

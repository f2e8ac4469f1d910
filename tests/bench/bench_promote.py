"""Benchmark: `pipectl promote` (no push) vs a plain `git commit` of the same one-line change.

One run, one temp repository (copies of pipeline.yaml and apps/), alternating:
- pipectl:  `pipectl --repo R promote --stage beta --tag T` as a fresh process (lock, gate,
            byte-exact edit, commit with trailers, three audit entries with fsync);
- baseline: write the same one-line tag change, then `git commit -q -m ... -- <values file>`.
Also times in-process `promotion.promote()` calls (the console's path: no interpreter start).
Each pipectl promotion gets a fresh tag with a recorded integration-test pass (not timed).

    python tests/bench/bench_promote.py            # 20 promotions per side
    python tests/bench/bench_promote.py --smoke    # 3 per side (CI)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VALUES = "apps/stonks-oracle/beta/values.yaml"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def setup(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    shutil.copy2(REPO / "pipeline.yaml", repo / "pipeline.yaml")
    shutil.copytree(REPO / "apps", repo / "apps")
    (repo / ".gitignore").write_text(".pipectl/\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "init")
    return repo


def tag_for(i: int, side: str) -> str:
    return f"{'a' if side == 'pipectl' else 'b'}{i:07x}{'0' * 32}"


def record_pass(audit, tag: str) -> None:
    audit.append(
        action="inttest.passed",
        actor="bench",
        stage="integration-test",
        tag=tag,
        details={"passed": 1, "failed": 0, "errors": 0, "skipped": 0, "total": 1, "exit_code": 0},
    )


def summary(name: str, times: list[float]) -> str:
    times = sorted(times)
    p90 = times[min(len(times) - 1, round(0.9 * (len(times) - 1)))]
    return (
        f"{name:<28} n={len(times):<3} median {statistics.median(times) * 1000:7.1f} ms  "
        f"min {times[0] * 1000:7.1f} ms  p90 {p90 * 1000:7.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="3 promotions per side")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    runs = 3 if args.smoke else args.runs

    from pipectl.audit import AuditLog
    from pipectl.context import Context
    from pipectl.promotion import promote
    from pipectl.values_file import set_tag

    env = {**os.environ, **GIT_ENV, "PIPECTL_ACTOR": "bench@example.com"}
    os.environ.update(GIT_ENV)
    exe = shutil.which("pipectl")
    pipectl = [exe] if exe else [sys.executable, "-m", "pipectl.cli"]
    with tempfile.TemporaryDirectory(prefix="bench-promote-") as tmp:
        root = Path(tmp)
        repo = setup(root)
        audit_path = root / "audit.jsonl"
        env["PIPECTL_AUDIT_LOG"] = str(audit_path)
        audit = AuditLog(audit_path)
        t_pipectl, t_git, t_inproc = [], [], []
        for i in range(runs):
            tag = tag_for(i, "pipectl")
            record_pass(audit, tag)
            cmd = [*pipectl, "--repo", str(repo), "promote", "--stage", "beta", "--tag", tag]
            start = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            t_pipectl.append(time.perf_counter() - start)
            if done.returncode != 0:
                print(done.stdout, done.stderr, file=sys.stderr)
                return 1

            set_tag(repo / VALUES, "global.image.tag", tag_for(i, "git"))
            start = time.perf_counter()
            subprocess.run(
                ["git", "commit", "-q", "-m", f"bump {i}", "--", VALUES],
                cwd=repo,
                env=env,
                check=True,
                capture_output=True,
            )
            t_git.append(time.perf_counter() - start)

        ctx = Context(repo=repo, audit_log_override=str(audit_path), actor_override="bench")
        for i in range(runs):
            tag = tag_for(runs + i, "pipectl")
            record_pass(audit, tag)
            start = time.perf_counter()
            res = promote(ctx, "beta", tag)
            t_inproc.append(time.perf_counter() - start)
            if res.status != "completed":
                print(res.message, file=sys.stderr)
                return 1
        ok = AuditLog(audit_path).verify().ok

    print(summary("pipectl promote (process)", t_pipectl))
    print(summary("promote() in-process", t_inproc))
    print(summary("git commit (baseline)", t_git))
    ratio = statistics.median(t_pipectl) / statistics.median(t_git)
    print(f"pipectl promote / git commit: {ratio:.1f}x (median); audit chain verifies: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

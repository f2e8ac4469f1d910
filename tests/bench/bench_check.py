"""Benchmark: `pipectl check` vs raw kubeconform on the same files (goal: <= 3x).

Both sides run as fresh processes, alternating, against this repository's gitops/ tree:
- pipectl:  `pipectl check` (upstream SHA-256 verification, YAML parse, cached schemas,
            kubeconform, Kargo step schemas, Helm values, policy);
- baseline: the exact kubeconform command `pipectl check` runs (same files, same generated
            schemas, -strict), i.e. what kubeconform alone costs.
Also reports one cold run (empty schema cache: schemas generated from the CRDs).

    python tests/bench/bench_check.py            # 15 runs per side
    python tests/bench/bench_check.py --smoke    # 3 runs per side (CI)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _time(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd[:3])}...\n{proc.stderr[-2000:]}")
    return elapsed


def raw_command(cache: Path) -> list[str]:
    """The kubeconform command `pipectl check` runs, built by the same code."""
    sys.path.insert(0, str(REPO / "tools"))
    from pipectl.render import load_versions
    from pipectl.validate import upstream
    from pipectl.validate.docs import load_manifests
    from pipectl.validate.kubeconform import command, find_kubeconform
    from pipectl.validate.schemas import SchemaStore

    versions = load_versions(REPO)
    mirror, problems = upstream.verify(upstream.default_upstream_dir(REPO), versions)
    if mirror is None:
        sys.exit("; ".join(str(p) for p in problems))
    docs, _ = load_manifests(REPO)
    files = sorted({d.file for d in docs})
    store = SchemaStore(mirror, versions["KUBERNETES_VERSION"], cache)
    return command(find_kubeconform(), store.locations, versions["KUBERNETES_VERSION"], files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="3 runs per side")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    runs = 3 if args.smoke else args.runs

    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        cache = Path(tmp) / "cache"
        env = {**os.environ, "PIPECTL_CACHE_DIR": str(cache)}
        check = [sys.executable, "-m", "pipectl.cli", "--repo", str(REPO), "check"]
        cold = _time(check, env, REPO)  # empty cache: generates every schema
        raw = raw_command(cache)
        ours: list[float] = []
        base: list[float] = []
        for _ in range(runs):
            ours.append(_time(check, env, REPO))
            base.append(_time(raw, env, REPO))

    med_ours, med_base = statistics.median(ours), statistics.median(base)
    print(f"pipectl check, cold cache:   {cold * 1000:7.0f} ms")
    print(f"pipectl check, warm (median of {runs}): {med_ours * 1000:7.0f} ms")
    print(f"raw kubeconform (median of {runs}):     {med_base * 1000:7.0f} ms")
    print(f"ratio pipectl/kubeconform:   {med_ours / med_base:7.2f}x (goal <= 3x)")


if __name__ == "__main__":
    main()

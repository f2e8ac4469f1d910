#!/usr/bin/env bash
# Runs every benchmark script under tests/bench/. `--smoke` (CI) keeps each run short;
# without it the scripts run their full measurements and print the figures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${GOBIN:-$HOME/go/bin}:$PATH"
shopt -s nullglob
benches=(tests/bench/bench_*.py)
if [ "${#benches[@]}" -eq 0 ]; then
  echo "bench: no benchmark scripts found" >&2
  exit 1
fi
for bench in "${benches[@]}"; do
  echo "==> ${bench} $*"
  python3 "$bench" "$@"
done

#!/usr/bin/env bash
# The test suite (the README's test command runs this after checks/install-deps.sh).
# Upstream CRDs and step schemas come from PIPECTL_UPSTREAM_DIR (default ../shared/upstream).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PIPECTL_UPSTREAM_DIR="${PIPECTL_UPSTREAM_DIR:-$(cd .. && pwd)/shared/upstream}"
export PATH="${GOBIN:-$HOME/go/bin}:$PATH"
exec python3 -m pytest -q "$@"

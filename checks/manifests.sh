#!/usr/bin/env bash
# Offline validation of the GitOps tree (the flake's `checks.manifests` and .ci/run run this).
# Installs nothing: needs pipectl (pip install -e .) and kubeconform 0.7.0 on PATH or in
# ~/go/bin. Upstream CRDs and Kargo step schemas come from PIPECTL_UPSTREAM_DIR
# (default ../shared/upstream), each verified against its SHA256SUMS before use.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${GOBIN:-$HOME/go/bin}:$PATH"
upstream="${PIPECTL_UPSTREAM_DIR:-../shared/upstream}"

echo "==> pipectl render --check (rendered files match pipeline.yaml and gitops/versions.env)"
python3 -m pipectl.cli --repo . render --check
echo "==> pipectl check (kubeconform -strict, Kargo step schemas, Helm values, policy)"
python3 -m pipectl.cli --repo . check --upstream "$upstream"

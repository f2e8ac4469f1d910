#!/usr/bin/env bash
# Installs everything this repository's checks and tests need on a fresh Debian machine
# (CI runs it from .ci/run). Idempotent: a second run only verifies.
# Nix users get the same tools from `nix develop`; this script is for machines without Nix.
set -euo pipefail

KUBECONFORM_VERSION=v0.7.0
ACTIONLINT_VERSION=v1.7.12

need_apt=()
command -v nix-instantiate >/dev/null || need_apt+=(nix-bin)
command -v shellcheck >/dev/null || need_apt+=(shellcheck)
command -v git >/dev/null || need_apt+=(git)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "==> apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

export GOBIN="${GOBIN:-$HOME/go/bin}"
mkdir -p "$GOBIN"
if ! "$GOBIN/kubeconform" -v 2>/dev/null | grep -q "${KUBECONFORM_VERSION}"; then
  echo "==> go install kubeconform@${KUBECONFORM_VERSION}"
  go install "github.com/yannh/kubeconform/cmd/kubeconform@${KUBECONFORM_VERSION}"
fi
if ! "$GOBIN/actionlint" -version 2>/dev/null | grep -q "${ACTIONLINT_VERSION#v}"; then
  echo "==> go install actionlint@${ACTIONLINT_VERSION}"
  go install "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}"
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
echo "==> pip install -e .[dev,bench]"
python3 -m pip install -q --disable-pip-version-check -e "${here}[dev,bench]"
echo "==> dependencies ready (add ${GOBIN} to PATH)"

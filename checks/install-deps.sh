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
# `go version -m` reads the module version built into the binary (their -v says "development").
go_tool() { # name module version
  if ! go version -m "$GOBIN/$1" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+$2[[:space:]]+$3([[:space:]]|$)"; then
    echo "==> go install $2/cmd/$1@$3"
    go install "$2/cmd/$1@$3"
  fi
}
go_tool kubeconform github.com/yannh/kubeconform "${KUBECONFORM_VERSION}"
go_tool actionlint github.com/rhysd/actionlint "${ACTIONLINT_VERSION}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
echo "==> pip install -e .[dev,bench]"
python3 -m pip install -q --disable-pip-version-check -e "${here}[dev,bench]"
echo "==> dependencies ready (add ${GOBIN} to PATH)"

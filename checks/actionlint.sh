#!/usr/bin/env bash
# Lints the GitHub Actions workflows with actionlint (and, through it, shellcheck over every
# `run:` script): this repository's .github/workflows/ and the app workflows kept under
# apps/*/workflows/ (not under .github/, so they are passed by path).
# Usage: checks/actionlint.sh [workflow file ...]   (default: all of the above)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

actionlint_bin="${ACTIONLINT:-}"
if [ -z "$actionlint_bin" ]; then
  if command -v actionlint >/dev/null 2>&1; then
    actionlint_bin="$(command -v actionlint)"
  elif [ -x "${GOBIN:-$HOME/go/bin}/actionlint" ]; then
    actionlint_bin="${GOBIN:-$HOME/go/bin}/actionlint"
  else
    echo "actionlint: not found on PATH or in \${GOBIN:-\$HOME/go/bin} (see checks/install-deps.sh)" >&2
    exit 1
  fi
fi
# Without shellcheck actionlint silently skips the `run:` scripts; insist on it.
if ! command -v shellcheck >/dev/null 2>&1; then
  echo "actionlint: shellcheck is not on PATH; run: scripts would go unchecked" >&2
  exit 1
fi

if [ "$#" -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(
    find .github/workflows apps -type f \( -name '*.yaml' -o -name '*.yml' \) \
      \( -path '.github/workflows/*' -o -path 'apps/*/workflows/*' \) \
      -not -path '*/scripts/*' 2>/dev/null | sort
  )
fi
if [ "${#files[@]}" -eq 0 ]; then
  echo "actionlint: no workflow files found" >&2
  exit 1
fi

"$actionlint_bin" -config-file .github/actionlint.yaml -shellcheck shellcheck "${files[@]}"
echo "actionlint: ${#files[@]} workflow(s) clean: ${files[*]}"

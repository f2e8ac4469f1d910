#!/usr/bin/env bash
# Runs shellcheck over every shell script in the repository (and .ci/run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t scripts < <(find . -name '*.sh' -not -path './.git/*' -not -path '*/node_modules/*' | sort)
[ -f .ci/run ] && scripts+=(.ci/run)
shellcheck -x "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} script(s) clean"

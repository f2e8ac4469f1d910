#!/usr/bin/env bash
# Python lint and format check over the package and the tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ruff check tools tests apps/stonks-oracle/workflows/scripts
ruff format --check tools tests apps/stonks-oracle/workflows/scripts

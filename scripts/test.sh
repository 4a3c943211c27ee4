#!/usr/bin/env bash
# `make test`: a throwaway copy of the whole stack on shifted ports, then every test tier.
set -uo pipefail
cd "$(dirname "$0")/.."
TEST_HOME=${1:-$PWD/.local/testrun}
export OPSDASH_HOME="$TEST_HOME"
export OPSDASH_ENV_FILE="$TEST_HOME/.env"

if [ -f "$OPSDASH_ENV_FILE" ]; then .venv/bin/opsdash down >/dev/null 2>&1 || true; fi
rm -rf "$TEST_HOME"
mkdir -p "$TEST_HOME"

cleanup() { .venv/bin/opsdash down >/dev/null 2>&1 || true; }
trap cleanup EXIT

.venv/bin/opsdash up --port-offset 20 --infra-only || exit 1
.venv/bin/opsdash prepare || exit 1

.venv/bin/pytest "${PYTEST_ARGS[@]:-tests}" -p no:cacheprovider
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "[test] pytest collected no tests: failing the run" >&2
  exit 1
fi
exit "$rc"

#!/usr/bin/env bash
# `make test`: a throwaway copy of the whole stack on shifted ports, then every test tier.
# TEST_PORT_OFFSET shifts the ports (default 20) so several copies can run side by side.
set -uo pipefail
cd "$(dirname "$0")/.."
TEST_HOME=${1:-$PWD/.local/testrun}

# The caller's shell may hold a running instance's settings (`set -a; . ./.env`): the test
# stack must never pick them up, so every variable opsdash reads is dropped first.
while IFS= read -r name; do unset "$name"; done < <(
  sed -n 's/^#\{0,1\} *\([A-Z][A-Z0-9_]*\)=.*/\1/p' .env.example
)
export OPSDASH_HOME="$TEST_HOME"
export OPSDASH_ENV_FILE="$TEST_HOME/.env"

if [ -f "$OPSDASH_ENV_FILE" ]; then .venv/bin/opsdash down >/dev/null 2>&1 || true; fi
rm -rf "$TEST_HOME"
mkdir -p "$TEST_HOME"

# --purge: as root the cluster lives under /var/lib/opsdash, outside the (throwaway) test home
cleanup() { .venv/bin/opsdash down --purge >/dev/null 2>&1 || true; }
trap cleanup EXIT

.venv/bin/opsdash up --port-offset "${TEST_PORT_OFFSET:-20}" --infra-only || exit 1
.venv/bin/opsdash prepare || exit 1

# PYTEST_ARGS (a plain string) narrows the run, e.g. PYTEST_ARGS="tests/unit -x".
read -r -a pytest_args <<< "${PYTEST_ARGS:-tests}"
.venv/bin/pytest "${pytest_args[@]}" -p no:cacheprovider --durations=25
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "[test] pytest collected no tests: failing the run" >&2
  exit 1
fi
exit "$rc"

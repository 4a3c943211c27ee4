#!/usr/bin/env bash
# `make bench`: scale benchmarks against the local PostgreSQL (started if needed). Prints figures.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-100000}
.venv/bin/opsdash up --infra-only >/dev/null
for b in bench_simulator bench_ingest bench_dbt bench_checks; do
  if [ -f "bench/$b.py" ]; then
    echo "### $b"
    .venv/bin/python -m "bench.$b" --scale "$SCALE"
  fi
done

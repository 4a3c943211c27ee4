#!/usr/bin/env bash
# `make bench`: scale benchmarks against the local PostgreSQL (started if needed). Prints figures.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-100000}
.venv/bin/opsdash up --infra-only >/dev/null
for b in bench_simulator bench_ingest bench_dbt bench_checks bench_timescale bench_forecast bench_churn bench_app; do
  if [ -f "bench/$b.py" ]; then
    echo "### $b"
    if [ "$b" = bench_dbt ] || [ "$b" = bench_churn ] || [ "$b" = bench_app ]; then
      .venv/bin/python -m "bench.$b" --scale "$SCALE" --scale "${SCALE_S10:-1000000}"
    else
      .venv/bin/python -m "bench.$b" --scale "$SCALE"
    fi
  fi
done
echo "### bench_import" && .venv/bin/python -m bench.bench_import --runs 5
# alert latency on its own fresh stack (3,000 customers, 60 days, ports +130): up ~25 min at load
# ~10 here, then up to 20 min of injections and waiting
echo "### bench_alert_latency" && nice -n 10 .venv/bin/python -m bench.bench_alert_latency
# the fault drill is not part of `make bench` (it breaks its own stack for ~25 min): `make drill`
echo "### fault drill: run \`make drill\` (bench/drill.py; README, Fault drill)"

#!/usr/bin/env bash
# `make bench`: the whole product at S1 and S10 side by side in one table (issue 14, point 4):
# a fresh stack of its own per scale (ports +150) - generation, cold build per stage, live cycles
# at a 1-minute cadence, code location import, peak RSS - in about 30 minutes.
# `make bench-parts` (`scripts/bench.sh parts`): each part on its own, against the local
# PostgreSQL (simulator, ingestion, dbt full/incremental, checks, TimescaleDB, forecasts, churn,
# app, import), then alert latency and the live cycle on small stacks of their own: hours.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-100000}
SCALE_S10=${SCALE_S10:-1000000}
if [ "${1:-}" != parts ]; then
  exec .venv/bin/python -m bench.bench_scale --scale "$SCALE" --scale "$SCALE_S10" ${BENCH_SCALE_ARGS:-}
fi
.venv/bin/opsdash up --infra-only >/dev/null
for b in bench_simulator bench_ingest bench_dbt bench_checks bench_timescale bench_forecast bench_churn bench_app; do
  if [ -f "bench/$b.py" ]; then
    echo "### $b"
    if [ "$b" = bench_dbt ] || [ "$b" = bench_churn ] || [ "$b" = bench_app ]; then
      .venv/bin/python -m "bench.$b" --scale "$SCALE" --scale "$SCALE_S10"
    else
      .venv/bin/python -m "bench.$b" --scale "$SCALE"
    fi
  fi
done
echo "### bench_import" && .venv/bin/python -m bench.bench_import --runs 5
# alert latency on its own fresh stack (3,000 customers, 60 days, ports +130): up ~25 min at load
# ~10 here, then up to 20 min of injections and waiting
echo "### bench_alert_latency" && nice -n 10 .venv/bin/python -m bench.bench_alert_latency
# the live incremental cycle on its own fresh stack (2,000 customers, 30 days, ports +210) at a
# 1-minute cadence: p50/p95 of launch, run and its breakdown from Dagster's run records
echo "### bench_cycle" && nice -n 10 .venv/bin/python -m bench.bench_cycle
# the fault drill is not part of either (it breaks its own stack for ~25 min): `make drill`
echo "### fault drill: run \`make drill\` (bench/drill.py; README, Fault drill)"

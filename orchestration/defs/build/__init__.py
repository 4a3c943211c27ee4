"""The first build: every asset materialized once, from raw to scores (`opsdash up` runs it on
an empty warehouse; a data engineer can launch it from the UI to rebuild everything).

Unlike the scheduled jobs, which run in one process because their steps are short, this run
has long steps that wait on different things — the support API's rate-limited pages, COPY from
the marketplace database, dbt, model fitting — so it runs two (one per core) at a time, each in
a process forked from a server that has imported the code location once. Its blocking checks on
the raw tables run as compiled SQL (the cycle's engine, same verdicts) rather than through Great
Expectations: the hourly and daily jobs write the Data Docs.

It builds what the app needs and checks what could block it: the warning-only `trends` suites
(Great Expectations, ~8 s of import in each step's process) and the dbt tests that scan whole
history (`heavy`, ~60 s of dbt's time at a million customers) block nothing, so they are left
to the jobs that run them anyway within the hour (`check_raw_trends`, the ingestion jobs) and
that night (`check_marts`, 03:40); the light dbt tests and every blocking check run here.
"""

import os

import dagster as dg

from orchestration.defs.quality.checks import ENGINE_TAG, warning_checks
from orchestration.defs.transform.assets import HEAVY_CHECKS

first_build_job = dg.define_asset_job(
    "first_build",
    selection=dg.AssetSelection.all() - warning_checks() - dg.AssetSelection.checks(*HEAVY_CHECKS),
    # forkserver: each step process forks from one that imported the definitions (~1 s each
    # otherwise). One step more than cores: the support-calls backfill mostly waits on the
    # API's rate limit, so the history tables load beside it and beside each other; which
    # step starts first is the ingestion's step priority (orchestration/lib/ingest/tables.py).
    executor_def=dg.multiprocess_executor.configured(
        {"start_method": {"forkserver": {}}, "max_concurrent": (os.cpu_count() or 1) + 1}
    ),
    run_tags={ENGINE_TAG: "sql"},
    description="Materialize every asset once (ingest -> blocking checks -> dbt with its light "
    "tests -> forecasts, churn training and scoring), steps side by side: what `opsdash up` "
    "runs on an empty warehouse. Warning-only suites and history-wide dbt tests run in their "
    "hourly and daily jobs.",
)

defs = dg.Definitions(jobs=[first_build_job])

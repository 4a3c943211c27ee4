"""The first build: every asset materialized once, from raw to scores (`opsdash up` runs it on
an empty warehouse; a data engineer can launch it from the UI to rebuild everything).

Unlike the scheduled jobs, which run in one process because their steps are short, this run
has long steps that wait on different things — the support API's rate-limited pages, COPY from
the marketplace database, dbt, model fitting — so it runs two (one per core) at a time, each in
a process forked from a server that has imported the code location once. Its blocking checks on
the raw tables run as compiled SQL (the cycle's engine, same verdicts) rather than through Great
Expectations: the hourly and daily jobs write the Data Docs.
"""

import dagster as dg

from orchestration.defs.quality.checks import ENGINE_TAG

first_build_job = dg.define_asset_job(
    "first_build",
    selection=dg.AssetSelection.all(),
    # forkserver: each step process forks from one that imported the definitions (~1 s each
    # otherwise); max_concurrent defaults to the CPU count.
    executor_def=dg.multiprocess_executor.configured({"start_method": {"forkserver": {}}}),
    run_tags={ENGINE_TAG: "sql"},
    description="Materialize every asset once (ingest -> checks -> dbt -> forecasts, churn "
    "training and scoring), steps side by side: what `opsdash up` runs on an empty warehouse.",
)

defs = dg.Definitions(jobs=[first_build_job])

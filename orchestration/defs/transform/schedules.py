"""When the dbt project runs.

The incremental cycle (every OPSDASH_CYCLE_MINUTES, default 5) is ONE run: new sessions and
session requests are ingested, their blocking quality checks run, and only then are the marts
rebuilt — so a bad batch stops the marts in the same run and they keep their last good state.
A daily job runs every dbt test, including those that scan whole history.
"""

import dagster as dg

from orchestration.defs.transform.assets import opsdash_dbt_models
from orchestration.lib.ingest.tables import TABLES
from orchestration.lib.schedules import LANE_TAG, running_schedules

DBT_OP = opsdash_dbt_models.op.name
MODELS = dg.AssetSelection.groups("staging", "intermediate", "marts")
CYCLE_RAW = dg.AssetSelection.assets(
    *[dg.AssetKey(["raw", t.name]) for t in TABLES if t.cadence == "cycle"]
)
# Every job that runs dbt shares one lane: never two dbt builds at once (lib/schedules.py).
CYCLE_LANE = {LANE_TAG: "cycle"}

incremental_cycle_job = dg.define_asset_job(
    "incremental_cycle",
    selection=CYCLE_RAW | MODELS,
    executor_def=dg.in_process_executor,
    config={"ops": {DBT_OP: {"config": {"heavy_tests": False}}}},
    run_tags=CYCLE_LANE,
    description="Ingest new sessions and requests, check them, rebuild the marts "
    "incrementally (light dbt tests).",
)

refresh_marts_job = dg.define_asset_job(
    "refresh_marts",
    selection=MODELS,
    executor_def=dg.in_process_executor,
    config={"ops": {DBT_OP: {"config": {"heavy_tests": False}}}},
    run_tags=CYCLE_LANE,
    description="dbt build of staging, intermediate and marts only (manual runs).",
)

check_marts_job = dg.define_asset_job(
    "check_marts",
    selection=MODELS,
    executor_def=dg.in_process_executor,
    config={"ops": {DBT_OP: {"config": {"heavy_tests": True}}}},
    run_tags=CYCLE_LANE,
    description="dbt build with every test, including those over whole history.",
)

SCHEDULES = running_schedules(incremental_cycle_job, check_marts_job)

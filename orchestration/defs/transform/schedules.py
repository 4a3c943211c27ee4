"""When the dbt project runs.

The incremental cycle (every OPSDASH_CYCLE_MINUTES, default 5) is ONE run: new sessions and
session requests are ingested, their blocking quality checks run, and only then are the marts
rebuilt — so a bad batch stops the marts in the same run and they keep their last good state.
A daily job runs every dbt test, including those that scan whole history.
"""

import dagster as dg

from opsdash_core.settings import get_settings
from orchestration.defs.quality.checks import ENGINE_TAG, warning_checks
from orchestration.defs.transform.assets import HEAVY_CHECKS, LIGHT_CHECKS, opsdash_dbt_models
from orchestration.lib.ingest.tables import TABLES
from orchestration.lib.schedules import LANE_TAG, running_schedules

DBT_OP = opsdash_dbt_models.op.name
MODELS = dg.AssetSelection.groups("staging", "intermediate", "marts")
# The models with the checks of their light tests: what a cycle's `dbt build` runs.
LIGHT_MODELS = MODELS - dg.AssetSelection.checks(*HEAVY_CHECKS)
CYCLE_RAW = dg.AssetSelection.assets(
    *[dg.AssetKey(["raw", t.name]) for t in TABLES if t.cadence == "cycle"]
)
# Every job that runs dbt shares one lane: never two dbt builds at once (lib/schedules.py).
CYCLE_LANE = {LANE_TAG: "cycle"}
# The warning-only suites (trends over the whole table) of the tables loaded every few minutes
# (the cycle's, the support calls) run hourly through Great Expectations instead; those jobs'
# blocking suites run as one SQL statement each (the engine tag,
# orchestration/defs/quality/checks.py), so they never import GX (~8-15 s of CPU per run).
RAW_TRENDS = warning_checks(t.name for t in TABLES if t.cadence in ("cycle", "support_calls"))

# The cycle selects the models without their dbt checks: Dagster writes an event per planned
# check when it creates a run and one per result (~40 ms each here, 100+ light tests), a fixed
# cost of every cycle. The light tests still run with their models and a failure still fails
# the step; `check_marts_light` reports them as checks every hour.
incremental_cycle_job = dg.define_asset_job(
    "incremental_cycle",
    selection=(CYCLE_RAW - RAW_TRENDS) | MODELS.without_checks(),
    executor_def=dg.in_process_executor,
    config={
        "ops": {
            DBT_OP: {
                "config": {
                    "heavy_tests": False,
                    "report_passing_tests": False,
                    # OPSDASH_CYCLE_DBT_TESTS: with every cycle (default) or hourly only
                    "tests": get_settings().cycle_dbt_tests == "cycle",
                }
            }
        }
    },
    run_tags={**CYCLE_LANE, ENGINE_TAG: "sql"},
    description="Ingest new sessions and requests, check them, rebuild the marts "
    "incrementally (with the light dbt tests unless OPSDASH_CYCLE_DBT_TESTS=hourly).",
)

refresh_marts_job = dg.define_asset_job(
    "refresh_marts",
    selection=LIGHT_MODELS,
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

check_marts_light_job = dg.define_asset_job(
    "check_marts_light",
    selection=dg.AssetSelection.checks(*LIGHT_CHECKS),
    executor_def=dg.in_process_executor,
    config={"ops": {DBT_OP: {"config": {"heavy_tests": False}}}},
    run_tags=CYCLE_LANE,
    description="dbt's light tests (no model built) reported as asset checks: the incremental "
    "cycle runs them with its models but reports only failures.",
)

check_raw_trends_job = dg.define_asset_job(
    "check_raw_trends",
    selection=RAW_TRENDS,
    executor_def=dg.in_process_executor,
    description="Great Expectations trend suites (freshness, volume, distribution shifts) of "
    "the tables loaded every few minutes (sessions, requests, support calls), with Data Docs; "
    "warnings only.",
)

SCHEDULES = running_schedules(
    incremental_cycle_job, check_marts_job, check_marts_light_job, check_raw_trends_job
)

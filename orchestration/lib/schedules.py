"""When each scheduled job runs: one cadence table and one way to build its schedule.

Every schedule in the code location starts RUNNING (a fresh `opsdash up` needs no clicks in the
UI) and is named `<job>_schedule`. Ingestion's per-table `TableSpec.cadence_minutes` says the
same thing for the raw tables; tests/unit/test_definitions.py checks the two agree.
"""

from __future__ import annotations

import dagster as dg

# job name -> cron (UTC)
CADENCE: dict[str, str] = {
    # transform: the 5-minute cycle ingests the fast tables and rebuilds the marts in one run
    "incremental_cycle": "*/5 * * * *",
    "check_marts": "40 3 * * *",
    # ingestion: support calls every 15 minutes, slow dimensions hourly
    "ingest_support_calls": "*/15 * * * *",
    "ingest_dimensions": "7 * * * *",
    # churn: retrain weekly (Sunday), score daily, monitor drift and realized accuracy after
    "train_churn_model": "0 1 * * 0",
    "score_churn": "0 3 * * *",
    "monitor_churn": "30 3 * * *",
    # forecasting: monitor yesterday's accuracy, forecast daily, retrain weekly (Sunday)
    "monitor_demand_forecast": "30 1 * * *",
    "forecast_demand": "0 2 * * *",
    "retrain_demand_forecast": "0 4 * * 0",
}


def running_schedules(*jobs: dg.UnresolvedAssetJobDefinition) -> list[dg.ScheduleDefinition]:
    """A RUNNING schedule per job, at the job's cadence in `CADENCE`."""
    return [
        dg.ScheduleDefinition(
            job=job,
            cron_schedule=CADENCE[job.name],
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
        for job in jobs
    ]

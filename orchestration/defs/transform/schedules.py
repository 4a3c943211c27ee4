"""The marts are rebuilt every 15 minutes (the seed's risk-score cadence)."""

import dagster as dg

refresh_marts_job = dg.define_asset_job(
    "refresh_marts",
    selection=dg.AssetSelection.groups("staging", "intermediate", "marts"),
    executor_def=dg.in_process_executor,
    description="dbt build of staging, intermediate and marts.",
)

SCHEDULES = [
    dg.ScheduleDefinition(
        job=refresh_marts_job,
        cron_schedule="2-59/15 * * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    ),
]

"""When each scheduled job runs: one cadence table and one way to build its schedule.

Every schedule in the code location starts RUNNING (a fresh `opsdash up` needs no clicks in the
UI) and is named `<job>_schedule`. The two fast cadences are settings (`OPSDASH_CYCLE_MINUTES`,
`OPSDASH_SUPPORT_CALLS_MINUTES`); ingestion's per-table `TableSpec.cadence_minutes` reads the
same settings, and tests/unit/test_definitions.py checks the two agree.

Runs and the queue (dagster.yaml): at most two runs at once, at most one per `opsdash/lane`
run tag. The jobs that run dbt or write the cycle's own raw tables share the `cycle` lane;
the jobs that only load other raw tables (support calls, the hourly dimensions) share the
`ingest_beside` lane, so they never wait behind a cycle nor hold one up (the hourly dimensions
in the cycle's lane queued one cycle an hour by 9 s at a million customers), while two dbt
builds never overlap. Loading beside a build is safe: a build starts by waiting for the
ingestion transactions in flight (`wait_for_ingestion`), later ones reach the next build. A schedule whose job is in a lane skips its tick while a run of that
job is still waiting in the queue, so a cycle slower than its cadence does not pile up runs;
while one only runs, the tick queues the next, which starts as soon as the lane frees. (Skipping
a tick whenever a run was active turned a 1-minute cadence with 60-70 s cycles into runs two
minutes apart: new rows could wait two cycles before reaching the marts and the alerts.)
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from opsdash_core.settings import Settings, get_settings

LANE_TAG = "opsdash/lane"
BESIDE_CYCLE = "ingest_beside"
"""The lane of the jobs that load raw tables the cycle does not (see the module docstring)."""
# Run statuses in which a run waits for its lane (not yet launched): at most one per job.
WAITING_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]


def every(minutes: int) -> str:
    """The cron (UTC) for every `minutes` minutes, aligned on the hour."""
    return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"


def cadence(settings: Settings | None = None) -> dict[str, str]:
    """job name -> cron (UTC), with the fast cadences from the settings."""
    settings = settings or get_settings()
    return {
        # transform: the cycle ingests the fast tables and rebuilds the marts in one run
        "incremental_cycle": every(settings.cycle_minutes),
        "check_marts": "40 3 * * *",
        # dbt's light tests as asset checks (the cycle runs them but reports only failures)
        "check_marts_light": "47 * * * *",
        # quality: GX trend suites of the cycle's tables (the cycle runs the blocking ones)
        "check_raw_trends": "27 * * * *",
        # ingestion: support calls on their own cadence, slow dimensions hourly
        "ingest_support_calls": every(settings.support_calls_minutes),
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


def skip_while_waiting(
    job_name: str,
) -> Callable[[dg.ScheduleEvaluationContext], dg.RunRequest | dg.SkipReason]:
    """A schedule body: one run per tick, or a skip while a run of the job is still waiting in
    the queue (one running plus one waiting at most)."""

    def _tick(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        waiting = context.instance.get_runs_count(
            filters=dg.RunsFilter(job_name=job_name, statuses=WAITING_STATUSES)
        )
        if waiting:
            return dg.SkipReason(f"a {job_name} run is already waiting for the one running")
        return dg.RunRequest()

    return _tick


def running_schedules(*jobs: dg.UnresolvedAssetJobDefinition) -> list[dg.ScheduleDefinition]:
    """A RUNNING schedule per job, at the job's cadence in `cadence()`; jobs in a lane skip a
    tick while a run of theirs is still waiting to start."""
    crons = cadence()
    return [
        dg.ScheduleDefinition(
            job=job,
            cron_schedule=crons[job.name],
            default_status=dg.DefaultScheduleStatus.RUNNING,
            execution_fn=skip_while_waiting(job.name) if LANE_TAG in job.run_tags else None,
        )
        for job in jobs
    ]

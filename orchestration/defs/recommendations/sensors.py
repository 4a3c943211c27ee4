"""When recommendations are generated: right after each churn scoring, and at most hourly after
the marts are rebuilt (the 5-minute cycle), so tutor and supply recommendations follow the data
without a run every five minutes. Each pass also expires, un-snoozes and clears."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.recommendations.assets import RECOMMENDATIONS
from orchestration.lib.sensors import already_followed

CHURN_SCORES = dg.AssetKey(["ml", "churn_scores"])
TUTOR_PERFORMANCE = dg.AssetKey(["marts", "tutor_performance"])

generate_recommendations_job = dg.define_asset_job(
    "generate_recommendations",
    selection=dg.AssetSelection.assets(RECOMMENDATIONS),
    executor_def=dg.in_process_executor,
    description="Open, refresh, clear and expire recommendations from the marts and churn scores.",
)


def _run_after(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry
) -> dg.RunRequest | dg.SkipReason:
    """A pass unless one already ran after the event (in its run, e.g. the first build)."""
    done = already_followed(context, asset_event, RECOMMENDATIONS)
    if done is not None:
        return done
    return dg.RunRequest(run_key=f"recommendations_after_{asset_event.run_id}")


@dg.asset_sensor(
    asset_key=CHURN_SCORES,
    job=generate_recommendations_job,
    name="recommendations_after_churn_scores",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each churn scoring: recommendations from the new scores' factors.",
)
def recommendations_after_churn_scores(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry
) -> dg.RunRequest | dg.SkipReason:
    return _run_after(context, asset_event)


@dg.asset_sensor(
    asset_key=TUTOR_PERFORMANCE,
    job=generate_recommendations_job,
    name="recommendations_after_marts",
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "At most hourly, when the marts were rebuilt since: recommendations follow the tutor "
        "flags, the supply gaps and the risk tiers."
    ),
)
def recommendations_after_marts(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry
) -> dg.RunRequest | dg.SkipReason:
    return _run_after(context, asset_event)

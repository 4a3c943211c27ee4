"""Score right after a promotion: when a churn_model materialization made its version the
champion, run the scoring job so ml.churn_scores never waits a day for the new model."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.churn.schedules import score_churn_job

CHURN_MODEL = dg.AssetKey(["ml", "churn_model"])


def promoted_version(asset_event: dg.EventLogEntry) -> str | None:
    """The model version a churn_model materialization made champion, or None."""
    materialization = asset_event.asset_materialization
    if materialization is None:
        return None
    metadata = materialization.metadata
    alias = metadata.get("alias")
    if alias is None or alias.value != "champion":
        return None
    version = metadata.get("version")
    return str(version.value) if version is not None else None


@dg.asset_sensor(
    asset_key=CHURN_MODEL,
    job=score_churn_job,
    name="score_churn_after_promotion",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "After each materialization of ml/churn_model that made its version champion: scores "
        "every active customer with it (the score_churn job)."
    ),
)
def score_churn_after_promotion(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry
) -> dg.RunRequest | dg.SkipReason:
    version = promoted_version(asset_event)
    if version is None:
        return dg.SkipReason("the new churn model version is not champion; scores unchanged")
    return dg.RunRequest(run_key=f"churn_champion_{version}_{asset_event.run_id}")

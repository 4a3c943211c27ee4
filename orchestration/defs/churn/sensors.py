"""Score right after a promotion: when a churn_model materialization made its version the
champion, run the scoring job so ml.churn_scores never waits a day for the new model.
Retrain on drift: when a churn_monitoring materialization found a drifted feature, run the
training job, at most once per monitored day and not within RETRAIN_COOLDOWN of the last
training: a shift that retraining cannot remove (the training cut-offs are always months old)
must not retrain the model every day."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from orchestration.defs.churn.schedules import score_churn_job, train_churn_job
from orchestration.lib.sensors import already_followed

CHURN_MODEL = dg.AssetKey(["ml", "churn_model"])
CHURN_MONITORING = dg.AssetKey(["ml", "churn_monitoring"])
CHURN_SCORES = dg.AssetKey(["ml", "churn_scores"])
RETRAIN_COOLDOWN = timedelta(days=3)


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
    # the run that promoted it may have scored with it already (`opsdash up`'s first build)
    done = already_followed(context, asset_event, CHURN_SCORES)
    if done is not None:
        return done
    return dg.RunRequest(run_key=f"churn_champion_{version}_{asset_event.run_id}")


def drift_retraining_key(asset_event: dg.EventLogEntry) -> str | None:
    """The run key of the retraining a churn_monitoring materialization asks for (one per
    monitored day), or None when no feature drifted."""
    materialization = asset_event.asset_materialization
    if materialization is None:
        return None
    metadata = materialization.metadata
    drifted = metadata.get("drifted_features")
    if drifted is None or not drifted.value:
        return None
    day = metadata.get("monitored_date")
    return f"churn_drift_{day.value if day is not None else asset_event.run_id}"


def cooling_down(trained_at: float, monitored_at: float) -> bool:
    """Whether a training at `trained_at` is too recent to retrain at `monitored_at` (epoch
    seconds)."""
    return monitored_at - trained_at < RETRAIN_COOLDOWN.total_seconds()


@dg.asset_sensor(
    asset_key=CHURN_MONITORING,
    job=train_churn_job,
    name="retrain_churn_on_drift",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "After each materialization of ml/churn_monitoring that found a feature whose PSI is "
        "above the threshold: retrains the churn model (the train_churn_model job), once per "
        "monitored day and not within 3 days of the last training. The new version still has "
        "to beat the champion to serve."
    ),
)
def retrain_churn_on_drift(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry
) -> dg.RunRequest | dg.SkipReason:
    key = drift_retraining_key(asset_event)
    if key is None:
        return dg.SkipReason("no churn feature drifted; the weekly retraining is enough")
    trained = context.instance.get_latest_materialization_event(CHURN_MODEL)
    if trained is not None and cooling_down(trained.timestamp, asset_event.timestamp):
        return dg.SkipReason(
            f"churn features drifted, but the model was trained less than {RETRAIN_COOLDOWN} ago"
        )
    drifted = asset_event.asset_materialization.metadata.get("drifted")  # type: ignore[union-attr]
    context.log.info(f"churn features drifted ({drifted.value if drifted else '?'}); retraining")
    return dg.RunRequest(run_key=key)

"""Retrain on degradation: when the daily forecast monitoring finds subjects whose MASE stayed
above the bar for the configured run of days, run the retraining job (the full backtest with
Prophet's larger budget) once for that monitored day.

A run always backtests and re-chooses the model of every subject, so the degraded subjects get
a fresh choice and fit; a subset run would leave the other subjects without rows in the newest
run, which is what every reader takes. The alert itself is the alert engine's
`forecast_accuracy` rule."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.forecasting.assets import MODEL_MONITORING
from orchestration.defs.forecasting.schedules import retrain_job


def degradation_retraining_key(asset_event: dg.EventLogEntry) -> str | None:
    """The run key of the retraining a monitoring materialization asks for (one per monitored
    day), or None when no subject is degraded."""
    materialization = asset_event.asset_materialization
    if materialization is None:
        return None
    metadata = materialization.metadata
    degraded = metadata.get("degraded_subjects")
    if degraded is None or str(degraded.value) in ("", "none"):
        return None
    day = metadata.get("day")
    return f"forecast_degraded_{day.value if day is not None else asset_event.run_id}"


@dg.asset_sensor(
    asset_key=MODEL_MONITORING,
    job=retrain_job,
    name="retrain_forecast_on_degradation",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "After each materialization of ml/model_monitoring that found degraded subjects (MASE "
        "above the bar for the configured days in a row): runs retrain_demand_forecast once per "
        "monitored day, which re-chooses and refits every subject's model."
    ),
)
def retrain_forecast_on_degradation(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry
) -> dg.RunRequest | dg.SkipReason:
    key = degradation_retraining_key(asset_event)
    if key is None:
        return dg.SkipReason("no subject's forecast is degraded; the weekly retraining is enough")
    degraded = asset_event.asset_materialization.metadata["degraded_subjects"]  # type: ignore[union-attr]
    context.log.info(f"degraded forecasts ({degraded.value}); retraining")
    return dg.RunRequest(run_key=key)

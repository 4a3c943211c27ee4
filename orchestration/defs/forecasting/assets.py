"""Forecasting assets: thin wrappers over `ml.forecasting.pipeline`.

`ml/demand_forecasts` and `ml/forecast_backtests` come from one run (the backtest decides
which model serves each subject, the forecast is written with the same run id);
`ml/model_monitoring` checks yesterday's forecasts against what happened. The ml modules
(statsforecast, prophet, mlflow) are imported inside the bodies so that loading the code
location stays fast.
"""

# No `from __future__ import annotations`: Dagster reads the config and resource annotations.

from datetime import UTC, datetime, timedelta

import dagster as dg

from opsdash_core.refresh_events import publish_forecast_updated
from orchestration.defs.resources import MlflowResource, WarehouseResource
from orchestration.lib.retries import MODEL_RUN_RETRY

SUPPLY_DEMAND = dg.AssetKey(["marts", "supply_demand_hourly"])
DEMAND_FORECASTS = dg.AssetKey(["ml", "demand_forecasts"])
FORECAST_BACKTESTS = dg.AssetKey(["ml", "forecast_backtests"])
MODEL_MONITORING = dg.AssetKey(["ml", "model_monitoring"])


class ForecastConfig(dg.Config):
    """Knobs of one forecasting run."""

    horizon_hours: int = 168
    history_days: int = 90
    prophet_budget_seconds: float = 20.0
    track_in_mlflow: bool = True


class MonitoringConfig(dg.Config):
    """Subjects with MASE above `mase_threshold` for `days` days in a row are listed in the
    asset's metadata. The alert is the alert engine's `forecast_accuracy` rule
    (alerting/rules.yaml, same defaults), which reads what this asset stores."""

    mase_threshold: float = 1.2
    days: int = 3


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            DEMAND_FORECASTS,
            deps=[SUPPLY_DEMAND],
            group_name="forecasting",
            kinds={"statsforecast", "prophet", "postgres"},
            description=(
                "Hourly requested sessions per subject for the next 7 days with 95% intervals,"
                " from the model that won the subject's backtest. Grain: one row per subject"
                " per future hour per run (run_id); the newest run is the current forecast."
            ),
        ),
        dg.AssetSpec(
            FORECAST_BACKTESTS,
            deps=[SUPPLY_DEMAND],
            group_name="forecasting",
            kinds={"postgres", "mlflow"},
            description=(
                "Rolling-origin backtest behind each run's choice of model: MAE, wMAPE, MASE"
                " and 95% coverage. Grain: one row per run, subject, model and origin."
            ),
        ),
    ],
    retry_policy=MODEL_RUN_RETRY,
)
def demand_forecasts(
    config: ForecastConfig, warehouse: WarehouseResource, mlflow: MlflowResource
) -> tuple[dg.MaterializeResult, dg.MaterializeResult]:
    from ml.forecasting.pipeline import forecast_subjects

    as_of = datetime.now(UTC)
    with warehouse.connect() as conn:
        outcome = forecast_subjects(
            conn,
            as_of,
            horizon_hours=config.horizon_hours,
            history_days=config.history_days,
            slow_budget_seconds=config.prophet_budget_seconds,
            tracking_uri=mlflow.resolved_uri() if config.track_in_mlflow else None,
        )
    # After the commit (the `with` above), so a reader reacting to the event finds the rows.
    publish_forecast_updated(
        outcome.run_id,
        {
            "rows": outcome.forecast_rows,
            "subjects": outcome.subjects,
            "fallback_subjects": outcome.fallback_subjects,
            "as_of": as_of,
            "horizon_hours": config.horizon_hours,
        },
    )
    shared = {"run_id": outcome.run_id, **outcome.registration}
    return (
        dg.MaterializeResult(
            asset_key=DEMAND_FORECASTS,
            metadata={
                **shared,
                "rows": outcome.forecast_rows,
                "subjects": outcome.subjects,
                "fallback_subjects": outcome.fallback_subjects,
                "served_models": outcome.served_models,
                **{f"seconds_{k}": v for k, v in outcome.seconds.items()},
            },
        ),
        dg.MaterializeResult(
            asset_key=FORECAST_BACKTESTS,
            metadata={
                **shared,
                "rows": outcome.backtest_rows,
                "mean_mase": outcome.mean_mase,
                "share_beating_naive": outcome.share_beating_naive,
                "mean_coverage": outcome.mean_coverage,
            },
        ),
    )


@dg.asset(
    key=MODEL_MONITORING,
    deps=[DEMAND_FORECASTS, SUPPLY_DEMAND],
    group_name="forecasting",
    kinds={"postgres"},
)
def forecast_monitoring(
    config: MonitoringConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Yesterday's forecast accuracy per subject (MAE, MASE, 95% coverage) against actual
    demand; the alert engine's `forecast_accuracy` rule raises a warning alert for a subject
    whose MASE stays above its bar. Grain: one row per model, subject and day."""
    from ml.forecasting.pipeline import monitor_day

    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    with warehouse.connect() as conn:
        outcome = monitor_day(conn, yesterday, threshold=config.mase_threshold, days=config.days)
    return dg.MaterializeResult(
        metadata={
            "day": outcome.day.isoformat(),
            "subjects": outcome.subjects,
            "mean_mase": outcome.mean_mase,
            "mean_coverage": outcome.mean_coverage,
            "degraded_subjects": ", ".join(outcome.degraded) or "none",
        }
    )

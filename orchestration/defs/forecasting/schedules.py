"""Forecasting cadence from the seed: forecast daily at 02:00, retrain (full backtest with a
larger Prophet budget, registered in MLflow) weekly on Sunday, monitor daily after the
forecast."""

import dagster as dg

from orchestration.defs.forecasting.assets import (
    DEMAND_FORECASTS,
    FORECAST_BACKTESTS,
    MODEL_MONITORING,
)
from orchestration.lib.schedules import running_schedules

forecast_job = dg.define_asset_job(
    "forecast_demand",
    selection=dg.AssetSelection.assets(DEMAND_FORECASTS, FORECAST_BACKTESTS),
    description="Backtest, choose a model per subject and forecast the next 7 days hourly.",
)
retrain_job = dg.define_asset_job(
    "retrain_demand_forecast",
    selection=dg.AssetSelection.assets(DEMAND_FORECASTS, FORECAST_BACKTESTS),
    config={"ops": {"demand_forecasts": {"config": {"prophet_budget_seconds": 120.0}}}},
    description="Weekly retraining: the full backtest with more time for Prophet.",
)
monitor_job = dg.define_asset_job(
    "monitor_demand_forecast",
    selection=dg.AssetSelection.assets(MODEL_MONITORING),
    description="Yesterday's forecast accuracy per subject; alerts on sustained degradation.",
)

SCHEDULES = running_schedules(forecast_job, retrain_job, monitor_job)

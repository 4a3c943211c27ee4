"""Forecasting domain: hourly demand forecasts per subject, their backtests, and daily
accuracy monitoring (thin wrappers over `ml.forecasting`)."""

import dagster as dg

from orchestration.defs.forecasting.assets import demand_forecasts, forecast_monitoring
from orchestration.defs.forecasting.schedules import SCHEDULES
from orchestration.defs.forecasting.sensors import retrain_forecast_on_degradation

defs = dg.Definitions(
    assets=[demand_forecasts, forecast_monitoring],
    schedules=SCHEDULES,
    sensors=[retrain_forecast_on_degradation],
)

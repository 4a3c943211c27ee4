"""Forecasting domain: hourly demand forecasts per subject, their backtests, and daily
accuracy monitoring (thin wrappers over `ml.forecasting`)."""

import dagster as dg

from orchestration.defs.forecasting.assets import demand_forecasts, forecast_monitoring
from orchestration.defs.forecasting.schedules import SCHEDULES

defs = dg.Definitions(assets=[demand_forecasts, forecast_monitoring], schedules=SCHEDULES)

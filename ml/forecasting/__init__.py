"""Demand forecasting per series: hourly frames in, 7-day forecasts with 95% intervals out.

Every series is backtested by rolling origin against a seasonal-naive baseline and faster
and slower challengers; the best by MASE serves it (see `forecast.py`)."""

from ml.forecasting.forecast import ForecastRun, backtest, forecast, forecast_run

__all__ = ["ForecastRun", "backtest", "forecast", "forecast_run"]

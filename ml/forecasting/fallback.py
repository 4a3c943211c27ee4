"""The flagged forecast for a series with too little history to backtest.

With fewer than a handful of weeks nothing can be validated, so the forecast is the
plainest seasonal estimate the history allows — the mean of the same hour of the week over
the whole weeks available, or with less than a week the mean of the same hour of the day —
with a band from its in-sample errors, never narrower than about two local standard units,
and the row says it is a fallback.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.forecasting.frames import HOURS_PER_WEEK, as_matrix
from ml.forecasting.intervals import conformal_quantiles, normaliser

WEEKLY = "fallback_weekly_profile"
DAILY = "fallback_daily_profile"
MIN_HALF_WIDTH = 1.96  # in normalised units: about a Poisson 95% band for counts


def fallback_forecast(series: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Forecast one regular hourly series (unique_id, ds, y) with the flagged fallback."""
    uid = str(series["unique_id"].iloc[0])
    y = series["y"].to_numpy(dtype=float)
    last = pd.Timestamp(series["ds"].iloc[-1])
    future = pd.date_range(last + pd.Timedelta(hours=1), periods=horizon, freq="h")
    period, model = (HOURS_PER_WEEK, WEEKLY) if len(y) >= HOURS_PER_WEEK else (24, DAILY)
    if len(y) >= period:
        cells = as_matrix(y, period)
        profile = cells.mean(axis=0)
        whole = cells.shape[0]
        # Each period against the mean of the others: errors as a forecast would make them.
        fitted = (
            ((cells.sum(axis=0) - cells) / (whole - 1)).ravel()
            if whole > 1
            else np.tile(profile, whole)
        )
        observed = cells.ravel()
        # position of each future hour in the profile (the profile starts right after
        # the last whole period, i.e. its row ends at the newest hour)
        yhat = profile[np.arange(horizon) % period]
    else:
        mean = float(y.mean()) if len(y) else 0.0
        profile = np.full(period, mean)
        fitted, observed = np.full(len(y), mean), y
        yhat = np.full(horizon, mean)
    level = float(y[-4 * HOURS_PER_WEEK :].mean()) if len(y) else 0.0
    residual = (observed - fitted) / normaliser(fitted, np.full(len(fitted), level))
    q_lo, q_hi = conformal_quantiles(residual) if len(residual) else (0.0, 0.0)
    q_lo, q_hi = min(q_lo, -MIN_HALF_WIDTH), max(q_hi, MIN_HALF_WIDTH)
    scale = normaliser(yhat, np.full(horizon, level))
    return pd.DataFrame(
        {
            "unique_id": uid,
            "ds": future,
            "yhat": yhat,
            "yhat_lower": yhat + q_lo * scale,
            "yhat_upper": yhat + q_hi * scale,
            "model": model,
            "is_fallback": True,
        }
    )

"""Daily forecast accuracy per series and the rule that says a series' forecast has gone bad.

MASE here divides the day's MAE by the 168-hour seasonal naive's in-sample MAE over the
four weeks before the day, the same scale the backtest uses, so a value above 1 means last
week's demand repeated would have done better.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from ml.forecasting.backtest import in_sample_scale
from ml.forecasting.intervals import covered

MASE_ALERT = 1.2
ALERT_DAYS = 3
COLUMNS = ("unique_id", "monitored_date", "served_model", "hours", "mae", "mase", "coverage")


def daily_accuracy(
    forecasts: pd.DataFrame, actuals: pd.DataFrame, history: pd.DataFrame, day: date
) -> pd.DataFrame:
    """One row per series forecast for `day`: hours compared, MAE, MASE, 95% coverage.

    `forecasts`: unique_id, ds, yhat, yhat_lower, yhat_upper, model; `actuals`: the day's
    (unique_id, ds, y); `history`: (unique_id, ds, y) before the day (for the MASE scale)."""
    joined = forecasts.merge(actuals, on=["unique_id", "ds"], how="inner")
    if joined.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    joined = joined.assign(
        abs_error=(joined["y"] - joined["yhat"]).abs(),
        inside=covered(joined["y"], joined["yhat_lower"], joined["yhat_upper"]),
    )
    out = joined.groupby("unique_id", as_index=False).agg(
        served_model=("model", "last"),
        hours=("ds", "size"),
        mae=("abs_error", "mean"),
        coverage=("inside", "mean"),
    )
    recent = history.sort_values(["unique_id", "ds"]).groupby("unique_id").tail(4 * 168 + 168)
    scale = in_sample_scale(recent) if not recent.empty else pd.Series(dtype=float)
    out["mase"] = out["mae"] / out["unique_id"].map(scale).fillna(1.0)
    out["monitored_date"] = day
    return out[list(COLUMNS)]


def degraded(
    monitoring: pd.DataFrame, threshold: float = MASE_ALERT, days: int = ALERT_DAYS
) -> list[str]:
    """Series whose MASE exceeded `threshold` on each of their last `days` monitored days
    (consecutive calendar days)."""
    flagged = []
    for uid, part in monitoring.sort_values("monitored_date").groupby("unique_id"):
        last = part.tail(days)
        if len(last) < days:
            continue
        dates = pd.to_datetime(last["monitored_date"])
        consecutive = bool((np.diff(dates.to_numpy()) == np.timedelta64(1, "D")).all())
        if consecutive and (last["mase"] > threshold).all():
            flagged.append(str(uid))
    return flagged

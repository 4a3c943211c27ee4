"""95% intervals calibrated from backtest errors (split-conformal, per horizon bucket).

Model-native intervals are often wrong on real hourly demand (Prophet's under-cover,
naive ones over-cover). The backtest gives each series and model a few hundred honest
out-of-sample errors; their empirical 2.5%/97.5% quantiles, taken per day of the horizon
(pooled with the neighbouring days for enough points), make intervals whose coverage holds
on the next week when errors are roughly exchangeable. Errors are divided by
`sqrt(max(yhat, 0) + mean level)` first, so busy hours get wider bands than quiet ones;
the normaliser scales with the data, so the bands do not depend on the series' units.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ALPHA = 0.05
BUCKET_HOURS = 24
# Native intervals are served as they are when their backtest coverage lies in this band.
NATIVE_BAND = (0.925, 0.975)
KEYS = ["unique_id", "model"]


def normaliser(yhat: np.ndarray | pd.Series, level: np.ndarray | pd.Series) -> np.ndarray:
    """Local error scale: grows with the forecast, never zero while the series has demand."""
    value = np.sqrt(np.clip(np.asarray(yhat, dtype=float), 0, None) + np.asarray(level, float))
    return np.where(value > 0, value, 1.0)


def bucket(step: np.ndarray | pd.Series) -> np.ndarray:
    """Horizon bucket of a 1-based step (day of the horizon)."""
    return (np.asarray(step) - 1) // BUCKET_HOURS


def conformal_quantiles(values: np.ndarray, alpha: float = ALPHA) -> tuple[float, float]:
    n = len(values)
    if n == 0:
        return (np.nan, np.nan)
    upper = min(1.0, (1 - alpha / 2) * (n + 1) / n)
    lower = max(0.0, 1 - upper)
    return (
        float(np.quantile(values, lower, method="lower")),
        float(np.quantile(values, upper, method="higher")),
    )


def fit_quantiles(errors: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Per (unique_id, model, bucket): normalised error quantiles `q_lo`, `q_hi`.

    `errors` needs unique_id, model, step, y, yhat, level."""
    frame = errors.dropna(subset=["y", "yhat"])
    residual = (frame["y"] - frame["yhat"]) / normaliser(frame["yhat"], frame["level"])
    frame = frame.assign(residual=residual.to_numpy(), bucket=bucket(frame["step"]))
    rows = []
    for (uid, model), part in frame.groupby(KEYS, sort=True):
        buckets = part["bucket"].to_numpy()
        values = part["residual"].to_numpy()
        for b in np.unique(buckets):
            near = np.abs(buckets - b) <= 1
            q_lo, q_hi = conformal_quantiles(values[near], alpha)
            rows.append((uid, model, int(b), q_lo, q_hi))
    return pd.DataFrame(rows, columns=[*KEYS, "bucket", "q_lo", "q_hi"])


def apply_quantiles(forecast: pd.DataFrame, quantiles: pd.DataFrame) -> pd.DataFrame:
    """Set `yhat_lower`/`yhat_upper` from the quantiles; forecast needs unique_id, model,
    step, yhat, level. Steps past the calibrated buckets use the last bucket."""
    frame = forecast.assign(bucket=bucket(forecast["step"]))
    last = quantiles.groupby(KEYS)["bucket"].max().rename("last_bucket").reset_index()
    frame = frame.merge(last, on=KEYS, how="left")
    frame["bucket"] = np.minimum(frame["bucket"], frame["last_bucket"].fillna(0))
    frame = frame.drop(columns=["last_bucket", "yhat_lower", "yhat_upper"], errors="ignore")
    frame = frame.merge(quantiles, on=[*KEYS, "bucket"], how="left")
    scale = normaliser(frame["yhat"], frame["level"])
    frame["yhat_lower"] = frame["yhat"] + frame["q_lo"] * scale
    frame["yhat_upper"] = frame["yhat"] + frame["q_hi"] * scale
    return frame.drop(columns=["bucket", "q_lo", "q_hi"])


def covered(y: pd.Series, lower: pd.Series, upper: pd.Series) -> pd.Series:
    """1.0 where the actual lies inside the interval (bounds inclusive), NaN without one."""
    inside = ((y >= lower) & (y <= upper)).astype(float)
    return inside.where(lower.notna() & upper.notna())


def leave_one_origin_out(errors: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Honest coverage of calibrated intervals: per origin, calibrate on the other origins'
    errors and count the hours of this origin inside. Returns unique_id, model, origin,
    calibrated_coverage."""
    rows = []
    for fold in sorted(errors["fold"].unique()):
        held = errors[errors["fold"] == fold]
        quantiles = fit_quantiles(errors[errors["fold"] != fold], alpha)
        if quantiles.empty:
            continue
        bands = apply_quantiles(held, quantiles)
        lower = bands["yhat_lower"].clip(lower=0)
        inside = covered(bands["y"], lower, bands["yhat_upper"])
        keys = [*KEYS, "origin"]
        rows.append(bands.assign(inside=inside).groupby(keys, as_index=False)["inside"].mean())
    if not rows:
        return pd.DataFrame(columns=[*KEYS, "origin", "calibrated_coverage"])
    out = pd.concat(rows, ignore_index=True)
    return out.rename(columns={"inside": "calibrated_coverage"})

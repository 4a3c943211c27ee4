"""Hourly series frames: the one shape every forecasting function takes, `(unique_id, ds, y)`.

Real feeds arrive with gaps (hours nobody asked for anything are often simply absent),
duplicates, time zones and strings for ids. `regularise` turns any of that into a strict
hourly grid per series, naive UTC timestamps, float demand, missing hours filled with 0,
so the models never have to guess.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = ("unique_id", "ds", "y")
FORECAST_COLUMNS = (
    "unique_id",
    "ds",
    "yhat",
    "yhat_lower",
    "yhat_upper",
    "model",
    "is_fallback",
)
HOURS_PER_WEEK = 168


def validate(history: pd.DataFrame) -> None:
    """Raise ValueError with a plain message when `history` is not an hourly series frame."""
    missing = [c for c in COLUMNS if c not in history.columns]
    if missing:
        raise ValueError(f"history needs columns {COLUMNS}; missing {missing}")
    if history["ds"].isna().any():
        raise ValueError("history has rows without a timestamp (ds)")
    if history["unique_id"].isna().any():
        raise ValueError("history has rows without a series id (unique_id)")
    y = pd.to_numeric(history["y"], errors="coerce")
    if y.isna().sum() > history["y"].isna().sum():
        raise ValueError("history.y holds values that are not numbers")


def regularise(history: pd.DataFrame) -> pd.DataFrame:
    """One row per series per hour from its first to its last observation, duplicates
    summed, missing hours and missing values as 0, timestamps as naive UTC hours. Each
    series keeps its own end: its forecast starts the hour after its last observation."""
    validate(history)
    frame = history.loc[:, list(COLUMNS)].copy()
    ds = pd.to_datetime(frame["ds"])
    if ds.dt.tz is not None:
        ds = ds.dt.tz_convert("UTC").dt.tz_localize(None)
    frame["ds"] = ds.dt.floor("h")
    frame["unique_id"] = frame["unique_id"].astype(str)
    frame["y"] = pd.to_numeric(frame["y"], errors="coerce").fillna(0.0).astype(float)
    frame = frame.groupby(["unique_id", "ds"], sort=True)["y"].sum().reset_index()
    if frame.empty:
        return pd.DataFrame({"unique_id": [], "ds": pd.to_datetime([]), "y": []})
    parts = []
    for uid, part in frame.groupby("unique_id", sort=True):
        grid = pd.date_range(part["ds"].min(), part["ds"].max(), freq="h")
        values = part.set_index("ds")["y"].reindex(grid, fill_value=0.0).to_numpy()
        parts.append(pd.DataFrame({"unique_id": uid, "ds": grid, "y": values}))
    return pd.concat(parts, ignore_index=True)


def future_hours(history: pd.DataFrame, horizon_hours: int) -> pd.DataFrame:
    """The `horizon_hours` hours after each series' last hour: (unique_id, ds)."""
    last = history.groupby("unique_id", sort=True)["ds"].max()
    parts = [
        pd.DataFrame(
            {
                "unique_id": uid,
                "ds": pd.date_range(end + pd.Timedelta(hours=1), periods=horizon_hours, freq="h"),
            }
        )
        for uid, end in last.items()
    ]
    if not parts:
        return pd.DataFrame({"unique_id": [], "ds": pd.to_datetime([])})
    return pd.concat(parts, ignore_index=True)


def series_lengths(history: pd.DataFrame) -> pd.Series:
    """Hours of history per series."""
    return history.groupby("unique_id", sort=True).size()


def as_matrix(values: np.ndarray, period: int) -> np.ndarray:
    """The last whole periods of `values` as rows (oldest first), for seasonal arithmetic."""
    whole = len(values) // period
    return values[len(values) - whole * period :].reshape(whole, period)

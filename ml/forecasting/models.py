"""The candidate models. Each takes a regular hourly frame `(unique_id, ds, y)` (see
`frames.regularise`) and a horizon, and returns `(unique_id, ds, yhat, yhat_lower,
yhat_upper)` for the series it could forecast; a series it could not forecast is simply
absent, which the caller treats as that model failing for that series.

Why these: on real hourly demand, averaging the same hour over a few weeks and smoothing it
beats repeating last week (the seasonal naive), and combinations of simple models are hard
to beat. statsforecast fits its models for all series in one call. Prophet is the seed's
model, slow (about a second per fit), so the backtest spends a time budget on it only where
the fast models do worst. MSTL is available but is not a default: its STL decompositions cost
~0.7 CPU s per 90-day series here, too much for every series at every origin.
`yhat_lower`/`yhat_upper` are the model's own 95% intervals, NaN when it has none; the
served intervals are calibrated from backtest errors (`intervals.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from ml.forecasting.frames import HOURS_PER_WEEK, future_hours

LEVEL = 95
OUTPUT = ("unique_id", "ds", "yhat", "yhat_lower", "yhat_upper")
WINDOW_WEEKS = 4
PROFILE_WEEKS = 4
PROPHET_WEEKS = 8
MSTL_WEEKS = 6

ModelFn = Callable[[pd.DataFrame, int, "pd.DataFrame | None"], pd.DataFrame]


@dataclass(frozen=True)
class Candidate:
    """A named model. `slow` ones are run per series under the backtest's time budget."""

    name: str
    fit_predict: ModelFn
    slow: bool = False


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in OUTPUT}).astype({"ds": "datetime64[ns]"})


def _statsforecast(
    history: pd.DataFrame, horizon: int, model: object, alias: str, intervals: bool
) -> pd.DataFrame:
    from statsforecast import StatsForecast

    if history.empty:
        return _empty()
    sf = StatsForecast(models=[model], freq="h", n_jobs=1)
    kwargs: dict[str, Any] = {"level": [LEVEL]} if intervals else {}
    # statsforecast types its result as pandas-or-polars; it is pandas for a pandas input.
    out = cast(pd.DataFrame, sf.forecast(df=history[["unique_id", "ds", "y"]], h=horizon, **kwargs))
    out = out.reset_index() if "unique_id" not in out.columns else out
    frame = pd.DataFrame(
        {
            "unique_id": out["unique_id"].astype(str),
            "ds": pd.to_datetime(out["ds"]),
            "yhat": out[alias].astype(float),
            "yhat_lower": out[f"{alias}-lo-{LEVEL}"].astype(float) if intervals else np.nan,
            "yhat_upper": out[f"{alias}-hi-{LEVEL}"].astype(float) if intervals else np.nan,
        }
    )
    return frame[np.isfinite(frame["yhat"])]


def _long_enough(history: pd.DataFrame, hours: int) -> pd.DataFrame:
    sizes = history.groupby("unique_id")["ds"].transform("size")
    return history[sizes >= hours]


def seasonal_naive(history: pd.DataFrame, horizon: int, _: pd.DataFrame | None) -> pd.DataFrame:
    """Last week repeated: the benchmark every served model has to beat. Its own interval is
    +-1.96 standard deviations of the in-sample week-over-week differences."""
    history = _long_enough(history, HOURS_PER_WEEK + 1)
    future = future_hours(history, horizon)
    parts = []
    for uid, part in history.groupby("unique_id", sort=True):
        y = part["y"].to_numpy(dtype=float)
        last_week = y[-HOURS_PER_WEEK:]
        yhat = last_week[np.arange(horizon) % HOURS_PER_WEEK]
        sigma = float(np.std(y[HOURS_PER_WEEK:] - y[:-HOURS_PER_WEEK]))
        half = 1.96 * sigma * np.sqrt(np.arange(horizon) // HOURS_PER_WEEK + 1)
        ds = future.loc[future["unique_id"] == uid, "ds"].to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": ds,
                    "yhat": yhat,
                    "yhat_lower": yhat - half,
                    "yhat_upper": yhat + half,
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else _empty()


def window_average(history: pd.DataFrame, horizon: int, _: pd.DataFrame | None) -> pd.DataFrame:
    """The mean of the same hour of the week over the last four weeks (fewer when the
    history is shorter, at least one)."""
    history = _long_enough(history, HOURS_PER_WEEK)
    future = future_hours(history, horizon)
    parts = []
    for uid, part in history.groupby("unique_id", sort=True):
        y = part["y"].to_numpy(dtype=float)
        weeks = min(WINDOW_WEEKS, len(y) // HOURS_PER_WEEK)
        profile = y[len(y) - weeks * HOURS_PER_WEEK :].reshape(weeks, HOURS_PER_WEEK).mean(0)
        ds = future.loc[future["unique_id"] == uid, "ds"].to_numpy()
        yhat = profile[np.arange(horizon) % HOURS_PER_WEEK]
        parts.append(
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": ds,
                    "yhat": yhat,
                    "yhat_lower": np.nan,
                    "yhat_upper": np.nan,
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else _empty()


def local_trend(history: pd.DataFrame, horizon: int, _: pd.DataFrame | None) -> pd.DataFrame:
    """Weekly shape plus a straight-line level through the last four weekly means, plus the
    last hour's deviation decaying at the residuals' lag-1 autocorrelation. For series that
    grow or shrink week over week, and for smooth ones whose next hours follow the last."""
    history = _long_enough(history, 2 * HOURS_PER_WEEK)
    future = future_hours(history, horizon)
    steps = np.arange(1, horizon + 1)
    centre = (HOURS_PER_WEEK - 1) / 2
    parts = []
    for uid, part in history.groupby("unique_id", sort=True):
        y = part["y"].to_numpy(dtype=float)
        weeks = min(WINDOW_WEEKS, len(y) // HOURS_PER_WEEK)
        cells = y[len(y) - weeks * HOURS_PER_WEEK :].reshape(weeks, HOURS_PER_WEEK)
        means = cells.mean(axis=1)
        slope = float(np.polyfit(np.arange(weeks), means, 1)[0])
        within = slope * (np.arange(HOURS_PER_WEEK) - centre) / HOURS_PER_WEEK
        shape = (cells - means[:, None] - within).mean(axis=0)
        residual = (cells - means[:, None] - within - shape).ravel()
        phi = 0.0
        if residual.std() > 0:
            phi = float(np.clip(np.corrcoef(residual[:-1], residual[1:])[0, 1], 0.0, 0.98))
        level = means[-1] + slope * (steps + centre) / HOURS_PER_WEEK
        yhat = level + shape[(steps - 1) % HOURS_PER_WEEK] + residual[-1] * phi**steps
        ds = future.loc[future["unique_id"] == uid, "ds"].to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": ds,
                    "yhat": yhat,
                    "yhat_lower": np.nan,
                    "yhat_upper": np.nan,
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else _empty()


def seasonal_es(history: pd.DataFrame, horizon: int, _: pd.DataFrame | None) -> pd.DataFrame:
    """Exponential smoothing of each hour of the week, smoothing weight fitted per series."""
    from statsforecast.models import SeasonalExponentialSmoothingOptimized

    history = _long_enough(history, 2 * HOURS_PER_WEEK)
    model = SeasonalExponentialSmoothingOptimized(season_length=HOURS_PER_WEEK)
    return _statsforecast(history, horizon, model, "SeasESOpt", False)


def mstl(history: pd.DataFrame, horizon: int, _: pd.DataFrame | None) -> pd.DataFrame:
    """MSTL with daily and weekly seasonality and an AutoETS trend, on the last six weeks."""
    from statsforecast.models import MSTL, AutoETS

    history = _long_enough(history, 3 * HOURS_PER_WEEK)
    history = history.groupby("unique_id", sort=False).tail(MSTL_WEEKS * HOURS_PER_WEEK)
    model = MSTL(season_length=[24, HOURS_PER_WEEK], trend_forecaster=AutoETS(model="ZZN"))
    return _statsforecast(history, horizon, model, "MSTL", True)


def day_hour_profile(history: pd.DataFrame, horizon: int, _: pd.DataFrame | None) -> pd.DataFrame:
    """Hour-of-day shape times day-of-week volume, both from the last four weeks, kept apart
    from the hour-of-week cell means when those are noisy: a cell sees only 4 values, an
    hour of the day (per weekday/weekend) sees 20 or 8. It is a smoothed seasonal profile."""
    history = _long_enough(history, HOURS_PER_WEEK)
    future = future_hours(history, horizon)
    parts = []
    for uid, part in history.groupby("unique_id", sort=True):
        recent = part.tail(PROFILE_WEEKS * HOURS_PER_WEEK)
        ds = pd.DatetimeIndex(recent["ds"])
        y = recent["y"].to_numpy()
        weekend = ds.dayofweek >= 5
        day_total = pd.Series(y).groupby([ds.normalize()]).sum()
        day_mean = day_total.groupby(pd.DatetimeIndex(day_total.index).dayofweek).mean()
        shape = {}
        for flag in (False, True):
            mask = weekend == flag
            if not mask.any():
                mask = np.ones(len(y), dtype=bool)
            by_hour = pd.Series(y[mask]).groupby(ds.hour[mask]).mean().reindex(range(24))
            by_hour = by_hour.fillna(0.0)
            total = by_hour.sum()
            shape[flag] = by_hour / total if total > 0 else by_hour * 0 + 1 / 24
        target = future[future["unique_id"] == uid]
        fds = pd.DatetimeIndex(target["ds"])
        volume = day_mean.reindex(fds.dayofweek).fillna(day_mean.mean()).to_numpy()
        share = np.where(
            fds.dayofweek >= 5,
            shape[True].to_numpy()[fds.hour],
            shape[False].to_numpy()[fds.hour],
        )
        parts.append(
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": fds,
                    "yhat": volume * share,
                    "yhat_lower": np.nan,
                    "yhat_upper": np.nan,
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else _empty()


def prophet(history: pd.DataFrame, horizon: int, calendar: pd.DataFrame | None) -> pd.DataFrame:
    """Prophet per series: daily + weekly seasonality, US holidays, the school calendar as a
    regressor, 95% intervals, fitted on the last eight weeks."""
    from ml.forecasting.calendar import regressors, us_holidays

    _quiet_prophet()
    from prophet import Prophet

    parts = []
    for uid, part in history.groupby("unique_id", sort=True):
        train = part.tail(PROPHET_WEEKS * HOURS_PER_WEEK)[["ds", "y"]].reset_index(drop=True)
        if len(train) < 2 * HOURS_PER_WEEK:
            continue
        future_ds = pd.date_range(
            train["ds"].iloc[-1] + pd.Timedelta(hours=1), periods=horizon, freq="h"
        )
        span = pd.DatetimeIndex(train["ds"]).append(future_ds)
        extra = calendar if calendar is not None else regressors(pd.DatetimeIndex(span))
        columns = [c for c in extra.columns if c != "ds"]
        extra = extra.set_index("ds").reindex(span).fillna(0.0)
        model = Prophet(
            daily_seasonality=True,
            weekly_seasonality=True,
            yearly_seasonality=False,
            interval_width=LEVEL / 100,
            holidays=us_holidays(span.min(), span.max()),
            uncertainty_samples=200,
        )
        for column in columns:
            if column != "is_holiday":  # holidays already enter as Prophet holidays
                model.add_regressor(column)
        used = [c for c in columns if c != "is_holiday"]
        fit_frame = train.assign(**{c: extra.loc[train["ds"], c].to_numpy() for c in used})
        model.fit(fit_frame)
        future = pd.DataFrame({"ds": future_ds})
        future = future.assign(**{c: extra.loc[future_ds, c].to_numpy() for c in used})
        predicted = model.predict(future)
        parts.append(
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": future_ds,
                    "yhat": predicted["yhat"].to_numpy(),
                    "yhat_lower": predicted["yhat_lower"].to_numpy(),
                    "yhat_upper": predicted["yhat_upper"].to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else _empty()


def _quiet_prophet() -> None:
    for name in ("cmdstanpy", "prophet", "prophet.plot"):
        logging.getLogger(name).setLevel(logging.ERROR)


SEASONAL_NAIVE = Candidate("seasonal_naive", seasonal_naive)
WINDOW_AVERAGE = Candidate("window_average", window_average)
SEASONAL_ES = Candidate("seasonal_es", seasonal_es)
LOCAL_TREND = Candidate("local_trend", local_trend)
DAY_HOUR_PROFILE = Candidate("day_hour_profile", day_hour_profile)
MSTL = Candidate("mstl", mstl)
PROPHET = Candidate("prophet", prophet, slow=True)

DEFAULT_CANDIDATES = (
    SEASONAL_NAIVE,
    WINDOW_AVERAGE,
    SEASONAL_ES,
    DAY_HOUR_PROFILE,
    LOCAL_TREND,
    PROPHET,
)
# Combinations: the mean of the members' forecasts, where all of them have one.
ENSEMBLE = "ensemble"
ENSEMBLES: dict[str, tuple[str, ...]] = {
    ENSEMBLE: ("window_average", "seasonal_es", "day_hour_profile"),
    "ensemble_trend": ("local_trend", "seasonal_es", "day_hour_profile"),
}
BASELINE = SEASONAL_NAIVE.name

"""Rolling-origin backtest: every candidate forecasts the same weeks from the same origins,
trained only on the hours before each origin.

Metrics per series, model and origin: MAE, wMAPE (sum of absolute errors over the sum of
actuals), MASE (MAE over the in-sample MAE of the 168-hour seasonal naive on the training
hours, so 1.0 means "as good as repeating last week"), coverage of the model's own 95%
interval and of the calibrated interval (leave one origin out).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.forecasting import intervals
from ml.forecasting.frames import HOURS_PER_WEEK
from ml.forecasting.models import (
    DEFAULT_CANDIDATES,
    ENSEMBLES,
    Candidate,
)

N_ORIGINS = 4
LEVEL_WEEKS = 4
METRIC_COLUMNS = (
    "unique_id",
    "model",
    "origin",
    "mae",
    "wmape",
    "mase",
    "coverage",
    "native_coverage",
    "calibrated_coverage",
)


@dataclass(frozen=True)
class Backtest:
    """Hour-level errors and per-origin metrics of one backtest run."""

    errors: pd.DataFrame  # unique_id, model, origin, ds, step, y, yhat, lower, upper, level
    metrics: pd.DataFrame  # METRIC_COLUMNS
    origins: tuple[pd.Timestamp, ...]
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)  # slow model -> series


def origins_for(history: pd.DataFrame, n_origins: int, horizon: int) -> list[pd.Timestamp]:
    """The last `n_origins` origins of the newest series, `horizon` hours apart, the last
    window ending at its newest hour (each series uses the same offsets from its own end)."""
    end = pd.Timestamp(history["ds"].max()) + pd.Timedelta(hours=1)
    return [end - pd.Timedelta(hours=horizon * k) for k in range(n_origins, 0, -1)]


def fold_origins(history: pd.DataFrame, fold: int, horizon: int) -> pd.Series:
    """Per series: the origin `fold` windows before its own end (fold 1 = the last week)."""
    ends = history.groupby("unique_id", sort=True)["ds"].max()
    return ends + pd.Timedelta(hours=1) - pd.Timedelta(hours=horizon * fold)


def split_at(
    history: pd.DataFrame, origins: pd.Series, horizon: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, actual): each series' hours before its origin, and the `horizon` after."""
    cut = history["unique_id"].map(origins)
    train = history[history["ds"] < cut]
    actual = history[(history["ds"] >= cut) & (history["ds"] < cut + _hours(horizon))]
    return train, actual


def in_sample_scale(train: pd.DataFrame) -> pd.Series:
    """Per series: mean |y_t - y_{t-168}| over the training hours (MASE's denominator);
    1.0 when it is 0 or undefined so MASE stays finite."""
    lagged = train.groupby("unique_id", sort=False)["y"].shift(HOURS_PER_WEEK)
    diff = (train["y"] - lagged).abs()
    scale = diff.groupby(train["unique_id"]).mean()
    return scale.where(scale > 0, 1.0).fillna(1.0)


def recent_level(train: pd.DataFrame) -> pd.Series:
    """Per series: mean demand over the last four weeks (the interval normaliser's floor)."""
    recent = train.groupby("unique_id", sort=False).tail(LEVEL_WEEKS * HOURS_PER_WEEK)
    return recent.groupby("unique_id")["y"].mean()


def run_backtest(
    history: pd.DataFrame,
    candidates: Sequence[Candidate] = DEFAULT_CANDIDATES,
    n_origins: int = N_ORIGINS,
    horizon: int = HOURS_PER_WEEK,
    calendar: pd.DataFrame | None = None,
    slow_budget_seconds: float = 20.0,
) -> Backtest:
    """Backtest `candidates` on a regular hourly frame (see `frames.regularise`).

    Fast candidates run for all series at once per origin. Slow ones (Prophet) run series by
    series, worst-served series first (by the fast models' mean MASE), until
    `slow_budget_seconds` is spent; the series left out are listed in `skipped`."""
    origins = origins_for(history, n_origins, horizon)
    seconds: dict[str, float] = {}
    parts: list[pd.DataFrame] = []
    for fold in range(n_origins, 0, -1):
        origin = fold_origins(history, fold, horizon)
        train, actual = split_at(history, origin, horizon)
        context = _context(train)
        for candidate in (c for c in candidates if not c.slow):
            started = time.perf_counter()
            predicted = _safe(candidate, train, horizon, calendar)
            seconds[candidate.name] = seconds.get(candidate.name, 0.0) + (
                time.perf_counter() - started
            )
            parts.append(_errors(predicted, actual, context, candidate.name, origin, fold))
    parts = [p for p in parts if not p.empty]
    errors = pd.concat(parts, ignore_index=True) if parts else _no_errors()
    errors = _add_ensemble(errors)
    skipped: dict[str, list[str]] = {}
    for candidate in (c for c in candidates if c.slow):
        started = time.perf_counter()
        slow_parts, skipped[candidate.name] = _run_slow(
            candidate, history, errors, n_origins, horizon, calendar, slow_budget_seconds
        )
        seconds[candidate.name] = time.perf_counter() - started
        slow_parts = [p for p in slow_parts if not p.empty]
        if slow_parts:
            errors = pd.concat([errors, *slow_parts], ignore_index=True)
    return Backtest(
        errors=errors,
        metrics=metrics(errors),
        origins=tuple(origins),
        seconds={k: round(v, 2) for k, v in seconds.items()},
        skipped=skipped,
    )


def metrics(errors: pd.DataFrame) -> pd.DataFrame:
    """Per (unique_id, model, origin): MAE, wMAPE, MASE and the coverages."""
    if errors.empty:
        return pd.DataFrame(columns=list(METRIC_COLUMNS))
    frame = errors.assign(
        abs_error=(errors["y"] - errors["yhat"]).abs(),
        inside=intervals.covered(errors["y"], errors["yhat_lower"], errors["yhat_upper"]),
    )
    keys = ["unique_id", "model", "origin"]
    grouped = frame.groupby(keys, as_index=False).agg(
        mae=("abs_error", "mean"),
        abs_sum=("abs_error", "sum"),
        y_sum=("y", lambda y: y.abs().sum()),
        scale=("scale", "first"),
        native_coverage=("inside", "mean"),
    )
    grouped["wmape"] = grouped["abs_sum"] / grouped["y_sum"].where(grouped["y_sum"] > 0)
    grouped["mase"] = grouped["mae"] / grouped["scale"]
    calibrated = intervals.leave_one_origin_out(errors)
    grouped = grouped.merge(calibrated, on=keys, how="left")
    native_ok = grouped.groupby(["unique_id", "model"])["native_coverage"].transform(
        lambda c: c.mean() if c.notna().all() else np.nan
    )
    low, high = intervals.NATIVE_BAND
    grouped["coverage"] = grouped["calibrated_coverage"].where(
        ~native_ok.between(low, high), grouped["native_coverage"]
    )
    return grouped[list(METRIC_COLUMNS)].sort_values(keys, ignore_index=True)


def summary(metrics_frame: pd.DataFrame) -> pd.DataFrame:
    """Per (unique_id, model): metrics averaged over origins and the number of origins."""
    return metrics_frame.groupby(["unique_id", "model"], as_index=False).agg(
        mae=("mae", "mean"),
        wmape=("wmape", "mean"),
        mase=("mase", "mean"),
        coverage=("coverage", "mean"),
        native_coverage=("native_coverage", "mean"),
        origins=("origin", "nunique"),
    )


def _hours(n: int) -> pd.Timedelta:
    return pd.Timedelta(hours=n)


def _context(train: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"scale": in_sample_scale(train), "level": recent_level(train)})


def _safe(
    candidate: Candidate, train: pd.DataFrame, horizon: int, calendar: pd.DataFrame | None
) -> pd.DataFrame:
    """A model that raises fails for every series it was given; the others go on."""
    try:
        return candidate.fit_predict(train, horizon, calendar)
    except Exception:
        return pd.DataFrame(columns=["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"])


def _errors(
    predicted: pd.DataFrame,
    actual: pd.DataFrame,
    context: pd.DataFrame,
    model: str,
    origins: pd.Series,
    fold: int,
) -> pd.DataFrame:
    if predicted.empty:
        return _no_errors()
    predicted = predicted.assign(ds=pd.to_datetime(predicted["ds"]))
    frame = actual.merge(predicted, on=["unique_id", "ds"], how="inner")
    frame = frame.merge(context, left_on="unique_id", right_index=True, how="left")
    frame["yhat"] = frame["yhat"].clip(lower=0)
    frame["model"] = model
    frame["origin"] = frame["unique_id"].map(origins)
    frame["fold"] = fold
    elapsed = pd.to_timedelta(frame["ds"] - frame["origin"])
    frame["step"] = (elapsed.dt.total_seconds() // 3600).astype(int) + 1
    return frame[list(_ERROR_COLUMNS)]


_ERROR_COLUMNS = (
    "unique_id",
    "model",
    "origin",
    "fold",
    "ds",
    "step",
    "y",
    "yhat",
    "yhat_lower",
    "yhat_upper",
    "scale",
    "level",
)


def _no_errors() -> pd.DataFrame:
    return pd.DataFrame(columns=list(_ERROR_COLUMNS))


def _add_ensemble(errors: pd.DataFrame) -> pd.DataFrame:
    combined = [_combine(errors, name, members) for name, members in ENSEMBLES.items()]
    return pd.concat([errors, *(c for c in combined if not c.empty)], ignore_index=True)


def _combine(errors: pd.DataFrame, name: str, names: tuple[str, ...]) -> pd.DataFrame:
    members = errors[errors["model"].isin(names)]
    if members.empty:
        return _no_errors()
    keys = ["unique_id", "origin", "fold", "ds"]
    combined = members.groupby(keys, as_index=False).agg(
        step=("step", "first"),
        y=("y", "first"),
        yhat=("yhat", "mean"),
        scale=("scale", "first"),
        level=("level", "first"),
        n=("model", "nunique"),
    )
    combined = combined[combined["n"] == len(names)].drop(columns="n")
    combined = combined.assign(model=name, yhat_lower=np.nan, yhat_upper=np.nan)
    return combined[list(_ERROR_COLUMNS)]


def _run_slow(
    candidate: Candidate,
    history: pd.DataFrame,
    errors: pd.DataFrame,
    n_origins: int,
    horizon: int,
    calendar: pd.DataFrame | None,
    budget_seconds: float,
) -> tuple[list[pd.DataFrame], list[str]]:
    """Run a slow model series by series, where the fast models do worst first."""
    if errors.empty:
        order = sorted(history["unique_id"].unique())
    else:
        fast = metrics_without_intervals(errors)
        best = fast.groupby("unique_id")["mase"].min()
        order = best.sort_values(ascending=False, kind="stable").index.tolist()
    started = time.perf_counter()
    parts: list[pd.DataFrame] = []
    skipped: list[str] = []
    for uid in order:
        if time.perf_counter() - started > budget_seconds:
            skipped.append(uid)
            continue
        series = history[history["unique_id"] == uid]
        for fold in range(n_origins, 0, -1):
            origin = fold_origins(series, fold, horizon)
            train, actual = split_at(series, origin, horizon)
            predicted = _safe(candidate, train, horizon, calendar)
            parts.append(_errors(predicted, actual, _context(train), candidate.name, origin, fold))
    return parts, skipped


def metrics_without_intervals(errors: pd.DataFrame) -> pd.DataFrame:
    """Per (unique_id, model): mean MASE over the origins (cheap, for ordering)."""
    frame = errors.assign(abs_error=(errors["y"] - errors["yhat"]).abs())
    per_origin = frame.groupby(["unique_id", "model", "origin"], as_index=False).agg(
        mae=("abs_error", "mean"), scale=("scale", "first")
    )
    per_origin["mase"] = per_origin["mae"] / per_origin["scale"]
    return per_origin.groupby(["unique_id", "model"])["mase"].mean().reset_index()

"""Public entry points: plain frames in, frames out, no database, no Dagster.

`forecast(history)` backtests every candidate per series, serves the best by MASE with
calibrated 95% intervals, and returns `(unique_id, ds, yhat, yhat_lower, yhat_upper, model,
is_fallback)` for the next `horizon_hours`. `backtest(history)` returns the backtest table.
`forecast_run(history)` returns both plus the choice per series (for MLflow and tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.forecasting import intervals
from ml.forecasting.backtest import N_ORIGINS, Backtest, recent_level, run_backtest
from ml.forecasting.fallback import fallback_forecast
from ml.forecasting.frames import FORECAST_COLUMNS, HOURS_PER_WEEK, regularise, series_lengths
from ml.forecasting.models import DEFAULT_CANDIDATES, ENSEMBLES, Candidate
from ml.forecasting.select import rank_models, rankings

CHOICE_COLUMNS = ("unique_id", "model", "rank", "mase", "coverage", "is_fallback", "reason")


@dataclass(frozen=True)
class ForecastRun:
    """A forecast with the evidence behind it."""

    forecast: pd.DataFrame  # FORECAST_COLUMNS
    backtest: Backtest | None
    ranking: pd.DataFrame  # unique_id, model, mase, coverage, native_coverage, rank
    choices: pd.DataFrame  # CHOICE_COLUMNS: the served model per series and why


def min_history_hours(n_origins: int = N_ORIGINS) -> int:
    """Hours a series needs to be backtested: the origins' weeks plus two weeks to train
    the first window (every fast model can fit on two weeks)."""
    return (n_origins + 2) * HOURS_PER_WEEK


def backtest(
    history: pd.DataFrame,
    n_origins: int = N_ORIGINS,
    candidates: Sequence[Candidate] = DEFAULT_CANDIDATES,
    calendar: pd.DataFrame | None = None,
    slow_budget_seconds: float = 20.0,
) -> pd.DataFrame:
    """Rolling-origin backtest table: unique_id, model, origin, mae, wmape, mase, coverage,
    native_coverage, calibrated_coverage (series too short to backtest are left out)."""
    frame = regularise(history)
    long_ids = _long_ids(frame, n_origins)
    result = run_backtest(
        frame[frame["unique_id"].isin(long_ids)],
        candidates,
        n_origins,
        calendar=calendar,
        slow_budget_seconds=slow_budget_seconds,
    )
    return result.metrics


def forecast(
    history: pd.DataFrame,
    horizon_hours: int = HOURS_PER_WEEK,
    n_origins: int = N_ORIGINS,
    candidates: Sequence[Candidate] = DEFAULT_CANDIDATES,
    calendar: pd.DataFrame | None = None,
    slow_budget_seconds: float = 20.0,
) -> pd.DataFrame:
    """Forecast every series `horizon_hours` ahead with its best backtested model."""
    return forecast_run(
        history, horizon_hours, n_origins, candidates, calendar, slow_budget_seconds
    ).forecast


def forecast_run(
    history: pd.DataFrame,
    horizon_hours: int = HOURS_PER_WEEK,
    n_origins: int = N_ORIGINS,
    candidates: Sequence[Candidate] = DEFAULT_CANDIDATES,
    calendar: pd.DataFrame | None = None,
    slow_budget_seconds: float = 20.0,
) -> ForecastRun:
    """Backtest, choose per series, refit on all history, forecast, calibrate, clip at 0."""
    frame = regularise(history)
    long_ids = _long_ids(frame, n_origins)
    long_frame = frame[frame["unique_id"].isin(long_ids)]
    result: Backtest | None = None
    ranked = pd.DataFrame(columns=["unique_id", "model", "mase", "coverage", "rank"])
    parts: list[pd.DataFrame] = []
    choices: list[dict[str, object]] = []
    if not long_frame.empty:
        result = run_backtest(
            long_frame,
            candidates,
            n_origins,
            calendar=calendar,
            slow_budget_seconds=slow_budget_seconds,
        )
        ranked = rank_models(result.metrics, n_origins)
        served, choices = _serve(long_frame, ranked, result, candidates, horizon_hours, calendar)
        parts.append(served)
    for uid in sorted(set(frame["unique_id"]) - {c["unique_id"] for c in choices}):
        flagged = fallback_forecast(frame[frame["unique_id"] == uid], horizon_hours)
        parts.append(flagged)
        reason = "too little history" if uid not in long_ids else "every model failed"
        choices.append(_choice(uid, flagged["model"].iloc[0], None, None, True, reason))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(FORECAST_COLUMNS)
    return ForecastRun(
        forecast=_clip(out)[list(FORECAST_COLUMNS)].sort_values(["unique_id", "ds"]),
        backtest=result,
        ranking=ranked,
        choices=pd.DataFrame(choices, columns=list(CHOICE_COLUMNS)),
    )


def _long_ids(frame: pd.DataFrame, n_origins: int) -> set[str]:
    lengths = series_lengths(frame)
    return set(lengths[lengths >= min_history_hours(n_origins)].index)


def _serve(
    history: pd.DataFrame,
    ranked: pd.DataFrame,
    result: Backtest,
    candidates: Sequence[Candidate],
    horizon: int,
    calendar: pd.DataFrame | None,
) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """Refit each series' best model on all its history; on failure try the next best."""
    by_name = {c.name: c for c in candidates}
    order = rankings(ranked)
    tried = dict.fromkeys(order, 0)
    level = recent_level(history)
    parts: list[pd.DataFrame] = []
    choices: list[dict[str, object]] = []
    while tried:
        wanted: dict[str, list[str]] = {}
        for uid, position in list(tried.items()):
            if position >= len(order[uid]):
                del tried[uid]  # every ranked model failed: the caller flags a fallback
                continue
            wanted.setdefault(order[uid][position], []).append(uid)
        for model, ids in wanted.items():
            subset = history[history["unique_id"].isin(ids)]
            predicted = _predict(model, by_name, subset, horizon, calendar)
            done = set(predicted["unique_id"]) if not predicted.empty else set()
            for uid in ids:
                if uid not in done:
                    tried[uid] += 1
                    continue
                rank = tried.pop(uid) + 1
                row = ranked[(ranked["unique_id"] == uid) & (ranked["model"] == model)].iloc[0]
                reason = "best backtest MASE" if rank == 1 else "better models failed to refit"
                choices.append(
                    _choice(uid, model, row["mase"], row["coverage"], rank > 1, reason, rank)
                )
            if done:
                served = predicted[predicted["unique_id"].isin(done)]
                parts.append(_with_intervals(served, model, result, ranked, level))
    served = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(FORECAST_COLUMNS)
    flags = {c["unique_id"]: c["is_fallback"] for c in choices}
    served["is_fallback"] = served["unique_id"].map(flags).astype(bool)
    return served, choices


def _predict(
    model: str,
    by_name: dict[str, Candidate],
    history: pd.DataFrame,
    horizon: int,
    calendar: pd.DataFrame | None,
) -> pd.DataFrame:
    """A model's forecast for the series it could forecast (none when it raised)."""
    if model in ENSEMBLES:
        names = ENSEMBLES[model]
        members = [_predict(m, by_name, history, horizon, calendar) for m in names]
        stacked = pd.concat(members, ignore_index=True)
        if stacked.empty:
            return stacked
        stacked["yhat"] = stacked["yhat"].clip(lower=0)
        counts = stacked.groupby(["unique_id", "ds"])["yhat"].transform("size")
        stacked = stacked[counts == len(names)]
        mean = stacked.groupby(["unique_id", "ds"], as_index=False)["yhat"].mean()
        return mean.assign(yhat_lower=np.nan, yhat_upper=np.nan)
    candidate = by_name.get(model)
    if candidate is None:
        return pd.DataFrame(columns=["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"])
    try:
        out = candidate.fit_predict(history, horizon, calendar)
    except Exception:
        return pd.DataFrame(columns=["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"])
    return out[np.isfinite(out["yhat"].astype(float))]


def _with_intervals(
    predicted: pd.DataFrame,
    model: str,
    result: Backtest,
    ranked: pd.DataFrame,
    level: pd.Series,
) -> pd.DataFrame:
    """Native 95% intervals where they covered 92.5-97.5% in the backtest, else conformal
    intervals from this model's backtest errors on the same series."""
    frame = predicted.assign(
        model=model,
        ds=pd.to_datetime(predicted["ds"]),
        yhat=predicted["yhat"].astype(float).clip(lower=0),
    )
    frame["step"] = frame.groupby("unique_id").cumcount() + 1
    frame["level"] = frame["unique_id"].map(level).fillna(0.0)
    native = ranked[ranked["model"] == model].set_index("unique_id")["native_coverage"]
    low, high = intervals.NATIVE_BAND
    keep_native = frame["unique_id"].map(native).between(low, high) & frame["yhat_lower"].notna()
    errors = result.errors[
        (result.errors["model"] == model)
        & result.errors["unique_id"].isin(frame.loc[~keep_native, "unique_id"])
    ]
    if (~keep_native).any():
        calibrated = intervals.apply_quantiles(frame[~keep_native], intervals.fit_quantiles(errors))
        frame = pd.concat([frame[keep_native], calibrated], ignore_index=True)
    return frame


def _clip(frame: pd.DataFrame) -> pd.DataFrame:
    """Demand is never negative; the band always contains the point forecast."""
    yhat = frame["yhat"].astype(float).clip(lower=0)
    lower = frame["yhat_lower"].astype(float).fillna(yhat).clip(lower=0)
    upper = frame["yhat_upper"].astype(float).fillna(yhat)
    return frame.assign(
        yhat=yhat, yhat_lower=np.minimum(lower, yhat), yhat_upper=np.maximum(upper, yhat)
    )


def _choice(
    uid: str,
    model: str,
    mase: float | None,
    coverage: float | None,
    is_fallback: bool,
    reason: str,
    rank: int | None = None,
) -> dict[str, object]:
    return {
        "unique_id": uid,
        "model": model,
        "rank": rank,
        "mase": mase,
        "coverage": coverage,
        "is_fallback": is_fallback,
        "reason": reason,
    }

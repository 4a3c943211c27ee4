"""The forecasting use cases the scheduler runs, over a warehouse connection: forecast every
subject (backtest, choose, refit, write both tables, optionally track in MLflow) and monitor
yesterday's accuracy. No Dagster here; the assets call these and report what they return."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import psycopg

from ml.forecasting import io
from ml.forecasting.forecast import forecast_run
from ml.forecasting.monitoring import ALERT_DAYS, MASE_ALERT, daily_accuracy, degraded

MODEL_NAME = "demand_forecast"


@dataclass(frozen=True)
class ForecastOutcome:
    """One forecasting run: what was written and how the chosen models did in the backtest."""

    run_id: str
    created_at: datetime
    subjects: int
    forecast_rows: int
    backtest_rows: int
    fallback_subjects: int
    served_models: dict[str, int]
    mean_mase: float | None
    share_beating_naive: float | None
    mean_coverage: float | None
    seconds: dict[str, float]
    registration: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MonitoringOutcome:
    """One day's accuracy check. `degraded` is for the asset's metadata; the alert for a
    degraded subject comes from the alert engine's `forecast_accuracy` rule, which reads the
    stored history (`ml.model_monitoring`)."""

    day: date
    subjects: int
    mean_mase: float | None
    mean_coverage: float | None
    degraded: list[str]


def forecast_subjects(
    conn: psycopg.Connection,
    as_of: datetime,
    *,
    horizon_hours: int = 168,
    history_days: int = io.HISTORY_DAYS,
    slow_budget_seconds: float = 20.0,
    tracking_uri: str | None = None,
) -> ForecastOutcome:
    """Forecast every subject from the hourly demand before `as_of` and store the run."""
    clock = time.perf_counter()
    history = io.load_demand_history(conn, as_of, history_days)
    seconds = {"load": time.perf_counter() - clock}
    clock = time.perf_counter()
    run = forecast_run(history, horizon_hours, slow_budget_seconds=slow_budget_seconds)
    seconds["forecast"] = time.perf_counter() - clock
    created_at = datetime.now(UTC).replace(microsecond=0)
    run_id = f"fc-{as_of.astimezone(UTC):%Y%m%dT%H%M}-{created_at:%H%M%S}"
    served = dict(zip(run.choices["unique_id"], run.choices["model"], strict=True))
    metrics = run.backtest.metrics if run.backtest is not None else pd.DataFrame()
    clock = time.perf_counter()
    forecast_rows = io.write_forecasts(conn, run.forecast, run_id, created_at)
    backtest_rows = io.write_backtests(conn, metrics, served, run_id, created_at)
    seconds["write"] = time.perf_counter() - clock
    registration: dict[str, str] = {}
    if tracking_uri:
        from ml.forecasting.tracking import log_run

        clock = time.perf_counter()
        registration = log_run(run, history, tracking_uri, run_id, as_of)
        seconds["mlflow"] = time.perf_counter() - clock
    summary = served_summary(run.ranking, run.choices)
    return ForecastOutcome(
        run_id=run_id,
        created_at=created_at,
        subjects=int(run.choices["unique_id"].nunique()),
        forecast_rows=forecast_rows,
        backtest_rows=backtest_rows,
        fallback_subjects=int(run.choices["is_fallback"].sum()),
        served_models={str(k): int(v) for k, v in run.choices["model"].value_counts().items()},
        mean_mase=summary["mean_mase"],
        share_beating_naive=summary["share_beating_naive"],
        mean_coverage=summary["mean_coverage"],
        seconds={k: round(v, 2) for k, v in seconds.items()},
        registration=registration,
    )


def served_summary(ranking: pd.DataFrame, choices: pd.DataFrame) -> dict[str, float | None]:
    """Backtest MASE and coverage of the served models, and the share of series where the
    served model's MASE is below the seasonal naive's."""
    if ranking.empty:
        return {"mean_mase": None, "share_beating_naive": None, "mean_coverage": None}
    served = choices.merge(ranking, on=["unique_id", "model"], suffixes=("", "_r"))
    naive = ranking[ranking["model"] == "seasonal_naive"].set_index("unique_id")["mase"]
    beats = served["mase_r"] < served["unique_id"].map(naive)
    return {
        "mean_mase": _mean(served["mase_r"]),
        "share_beating_naive": _mean(beats.astype(float)) if len(served) else None,
        "mean_coverage": _mean(served["coverage_r"]),
    }


def monitor_day(
    conn: psycopg.Connection,
    day: date,
    *,
    threshold: float = MASE_ALERT,
    days: int = ALERT_DAYS,
) -> MonitoringOutcome:
    """Compare the forecasts issued before `day` began with its demand, store the accuracy,
    and list the subjects whose MASE stayed above `threshold` for `days` days (alerting on them
    is the alert engine's `forecast_accuracy` rule, over what this stores)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    forecasts = io.load_forecasts_for(conn, start, end, issued_before=start)
    actuals = io.load_actuals(conn, start, end)
    history = io.load_actuals(conn, start - timedelta(days=35), start)
    accuracy = daily_accuracy(forecasts, actuals, history, day)
    io.write_monitoring(conn, accuracy, MODEL_NAME)
    recent = io.load_monitoring(conn, MODEL_NAME, start - timedelta(days=days + 1))
    flagged = degraded(recent, threshold, days)
    return MonitoringOutcome(
        day=day,
        subjects=len(accuracy),
        mean_mase=_mean(accuracy["mase"]) if len(accuracy) else None,
        mean_coverage=_mean(accuracy["coverage"]) if len(accuracy) else None,
        degraded=flagged,
    )


def _mean(values: pd.Series) -> float | None:
    value = pd.to_numeric(values, errors="coerce").mean()
    return None if pd.isna(value) else round(float(value), 4)

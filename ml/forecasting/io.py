"""Warehouse I/O for demand forecasting: read hourly requested sessions per subject, write
forecasts, backtests and monitoring rows. The only module of `ml.forecasting` that touches
a database; it takes a psycopg connection and leaves the transaction to the caller.

Demand is `marts.supply_demand_hourly.requested_sessions` (session requests asking for a
start in that hour, cancelled ones excluded), the mart the app and alerting read, so the
forecast is of the same quantity the ops team sees.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import psycopg

HISTORY_DAYS = 90

DEMAND_SQL = """
select subject_id, hour_at, requested_sessions
from marts.supply_demand_hourly
where hour_at >= %(start)s and hour_at < %(end)s
order by subject_id, hour_at
"""

FORECASTS_FOR_SQL = """
select distinct on (subject_id, hour_at)
    subject_id, hour_at, yhat, yhat_lower, yhat_upper, model
from ml.demand_forecasts
where hour_at >= %(start)s and hour_at < %(end)s and created_at <= %(issued_before)s
order by subject_id, hour_at, created_at desc
"""


def load_demand_history(
    conn: psycopg.Connection, as_of: datetime, days: int = HISTORY_DAYS
) -> pd.DataFrame:
    """`(unique_id, ds, y)`: requested sessions per subject per whole hour before `as_of`
    (the current, unfinished hour excluded), over the last `days` days; ds is naive UTC."""
    end = _hour(as_of)
    return _demand(conn, end - timedelta(days=days), end)


def load_actuals(conn: psycopg.Connection, start: datetime, end: datetime) -> pd.DataFrame:
    """`(unique_id, ds, y)` between `start` (inclusive) and `end` (exclusive)."""
    return _demand(conn, start, end)


def load_forecasts_for(
    conn: psycopg.Connection, start: datetime, end: datetime, issued_before: datetime
) -> pd.DataFrame:
    """The newest forecast issued no later than `issued_before` for each subject and hour in
    [start, end): unique_id, ds, yhat, yhat_lower, yhat_upper, model."""
    with conn.cursor() as cur:
        cur.execute(FORECASTS_FOR_SQL, {"start": start, "end": end, "issued_before": issued_before})
        rows = cur.fetchall()
    frame = pd.DataFrame(
        rows, columns=["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model"]
    )
    return _naive_utc(frame)


def write_forecasts(
    conn: psycopg.Connection, forecast: pd.DataFrame, run_id: str, created_at: datetime
) -> int:
    """COPY one run's forecast into ml.demand_forecasts (a rerun of `run_id` replaces it)."""
    with conn.cursor() as cur:
        cur.execute("delete from ml.demand_forecasts where run_id = %s", (run_id,))
        with cur.copy(
            "copy ml.demand_forecasts (run_id, subject_id, hour_at, yhat, yhat_lower,"
            " yhat_upper, model, is_fallback, created_at) from stdin"
        ) as copy:
            for row in _records(forecast):
                copy.write_row(
                    (
                        run_id,
                        int(row.unique_id),
                        _utc(row.ds),
                        float(row.yhat),
                        float(row.yhat_lower),
                        float(row.yhat_upper),
                        row.model,
                        bool(row.is_fallback),
                        created_at,
                    )
                )
    return len(forecast)


def write_backtests(
    conn: psycopg.Connection,
    metrics: pd.DataFrame,
    served: dict[str, str],
    run_id: str,
    created_at: datetime,
) -> int:
    """Insert one run's backtest table; `served` maps series id -> the model serving it."""
    rows = [
        (
            run_id,
            int(row.unique_id),
            row.model,
            _utc(row.origin),
            _float(row.mae),
            _float(row.wmape),
            _float(row.mase),
            _float(row.coverage),
            _float(row.native_coverage),
            served.get(str(row.unique_id)) == row.model,
            created_at,
        )
        for row in _records(metrics)
    ]
    with conn.cursor() as cur:
        cur.execute("delete from ml.forecast_backtests where run_id = %s", (run_id,))
        cur.executemany(
            "insert into ml.forecast_backtests (run_id, subject_id, model, origin_at, mae,"
            " wmape, mase, coverage, native_coverage, is_served, created_at)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    return len(rows)


def write_monitoring(conn: psycopg.Connection, rows: pd.DataFrame, model_name: str) -> int:
    """Upsert daily accuracy rows (unique_id, monitored_date, served_model, hours, mae, mase,
    coverage) into ml.model_monitoring."""
    values = [
        (
            model_name,
            int(row.unique_id),
            row.monitored_date,
            row.served_model,
            int(row.hours),
            _float(row.mae),
            _float(row.mase),
            _float(row.coverage),
        )
        for row in _records(rows)
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "insert into ml.model_monitoring (model_name, subject_id, monitored_date,"
            " served_model, hours, mae, mase, coverage) values (%s, %s, %s, %s, %s, %s, %s, %s)"
            " on conflict (model_name, subject_id, monitored_date) do update set"
            " served_model = excluded.served_model, hours = excluded.hours,"
            " mae = excluded.mae, mase = excluded.mase, coverage = excluded.coverage,"
            " computed_at = now()",
            values,
        )
    return len(values)


def load_monitoring(conn: psycopg.Connection, model_name: str, since: datetime) -> pd.DataFrame:
    """Monitoring history since a date: unique_id, monitored_date, mase."""
    with conn.cursor() as cur:
        cur.execute(
            "select subject_id, monitored_date, mase from ml.model_monitoring"
            " where model_name = %s and monitored_date >= %s order by subject_id, monitored_date",
            (model_name, since.date()),
        )
        rows = cur.fetchall()
    frame = pd.DataFrame(rows, columns=["unique_id", "monitored_date", "mase"])
    frame["unique_id"] = frame["unique_id"].astype(str)
    return frame


def _demand(conn: psycopg.Connection, start: datetime, end: datetime) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(DEMAND_SQL, {"start": start, "end": end})
        rows = cur.fetchall()
    frame = pd.DataFrame(rows, columns=["unique_id", "ds", "y"])
    frame["y"] = pd.to_numeric(frame["y"]).astype(float)
    return _naive_utc(frame)


def _naive_utc(frame: pd.DataFrame) -> pd.DataFrame:
    frame["unique_id"] = frame["unique_id"].astype(str)
    ds = pd.to_datetime(frame["ds"], utc=True)
    frame["ds"] = ds.dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


def _records(frame: pd.DataFrame) -> list[Any]:
    """Rows as named tuples with untyped fields (the writers convert each one)."""
    return list(frame.itertuples(index=False))


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _utc(value: Any) -> datetime:
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).to_pydatetime()


def _float(value: Any) -> float | None:
    number = float(value) if value is not None else float("nan")
    return None if number != number else number

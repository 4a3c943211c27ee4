"""What the Models & data page reads: champions in the MLflow registry, model monitoring,
data-quality results, freshness of raw tables and marts, service health and failed deliveries.

Every probe is bounded (short timeouts, LIMITs) and turns a failure into a `Health` row instead
of raising, because this page exists to show what is broken. Warehouse reads go through the
shared cache; the probes of other services (Dagster's database, MLflow, Redis) are memoized in
the process for a few seconds so a page full of sessions does not hammer them.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import psycopg
import redis
from psycopg import sql
from psycopg.rows import dict_row

from app_streamlit.data import Row, cached_query
from opsdash_core.redis_client import redis_client
from opsdash_core.settings import get_settings

PROBE_TIMEOUT_S = 2.0
PROBE_TTL_S = 15.0
SENSOR_STALE_S = 600  # the alert sensors tick every minute; 10 min without one is an outage
DAEMON_STALE_S = 120
SENSOR_HEARTBEAT_RULE = "__sensors__"
MODEL_NAMES = ("churn_logreg", "demand_forecast")

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    """One service's state: ok / warn / down, a one-line detail and when it was checked."""

    service: str
    status: str
    detail: str
    checked_at: datetime


def _health(service: str, status: str, detail: str) -> Health:
    return Health(service, status, detail, datetime.now(UTC))


_memo: dict[str, tuple[float, Any]] = {}
_memo_lock = threading.Lock()
_refreshing: set[str] = set()


def _memoized(key: str, fn: Callable[[], T], ttl: float = PROBE_TTL_S) -> T:
    """`fn()` at most once per `ttl` per process, stale-while-revalidate: once a value exists,
    a rerun after expiry gets it at once and one background thread computes the next. The
    probes take up to seconds (a 2 s timeout each); without this, one rerun in every window
    paid them all (611 ms p95 for the page in bench_app). Each Health row carries its own
    `checked_at`, so the page shows how old a probe is (at most ttl plus one probe)."""
    with _memo_lock:
        hit = _memo.get(key)
        if hit is None:
            pass
        elif hit[0] > time.monotonic() or key in _refreshing:
            return hit[1]
        else:
            _refreshing.add(key)
    if hit is None:
        value = fn()
        with _memo_lock:
            _memo[key] = (time.monotonic() + ttl, value)
        return value
    threading.Thread(target=_refresh, args=(key, fn, ttl), daemon=True).start()
    return hit[1]


def _refresh(key: str, fn: Callable[[], Any], ttl: float) -> None:
    try:
        value = fn()
        with _memo_lock:
            _memo[key] = (time.monotonic() + ttl, value)
    except Exception:  # the stale value stays; the next rerun after expiry retries
        log.warning("probe %s failed in the background; keeping the last value", key, exc_info=True)
    finally:
        with _memo_lock:
            _refreshing.discard(key)


def clear_memo() -> None:
    with _memo_lock:
        _memo.clear()


# --------------------------------------------------------------------------------- queries

CHURN_DRIFT_SQL = """
select monitored_date, model_version, count(*) as features,
       count(*) filter (where is_drifted) as drifted, max(psi) as max_psi,
       max(threshold) as threshold
from ml.churn_drift
where monitored_date > current_date - %(days)s::int
group by monitored_date, model_version
order by monitored_date
"""

CHURN_DRIFTED_FEATURES_SQL = """
select feature, psi, threshold
from ml.churn_drift
where monitored_date = (select max(monitored_date) from ml.churn_drift) and is_drifted
order by psi desc
limit 20
"""

CHURN_ACCURACY_SQL = """
select scored_date, model_version, customers, churned, roc_auc, recall, precision, threshold
from ml.churn_accuracy
where scored_date > current_date - %(days)s::int
order by scored_date
"""

FORECAST_MONITORING_SQL = """
select monitored_date, count(*) as subjects, avg(mase) as mase, avg(mae) as mae,
       avg(coverage) as coverage
from ml.model_monitoring
where monitored_date > current_date - %(days)s::int
group by monitored_date
order by monitored_date
"""

QUALITY_LATEST_SQL = """
select distinct on (asset_key, check_name)
       asset_key, check_name, suite, severity, success, expectations, failed, rows_checked,
       checked_at
from quality.check_runs
order by asset_key, check_name, checked_at desc
"""

QUALITY_FAILURES_SQL = """
select r.asset_key, r.check_name, r.label, r.column_name, r.severity, r.unexpected_count,
       r.element_count, r.checked_at
from quality.check_results as r
where not r.success and r.checked_at > now() - interval '1 day'
order by r.checked_at desc
limit 50
"""

RAW_FRESHNESS_SQL = """
select t.table_name, w.watermark, w.rows_loaded, w.updated_at as loaded_at
from information_schema.tables as t
left join raw.watermarks as w on w.table_name in (t.table_name, 'raw.' || t.table_name)
where t.table_schema = 'raw' and t.table_name not in ('watermarks', 'quarantine')
  and t.table_type = 'BASE TABLE'
order by t.table_name
"""

MART_RELATIONS_SQL = """
select c.table_name
from information_schema.columns as c
where c.table_schema = 'marts' and c.column_name = 'computed_at'
order by c.table_name
"""

SENSOR_HEARTBEAT_SQL = """
select last_success_at, last_evaluated_at, last_error
from app.alert_rule_state
where rule = %(rule)s
"""

FAILED_DELIVERIES_SQL = """
select id, channel, kind, severity, subject, status, attempts, last_error, created_at,
       given_up_at
from app.notification_outbox
where status in ('given_up', 'failed')
order by created_at desc, id desc
limit %(limit)s
"""

DAEMONS_SQL = "select daemon_type, timestamp from daemon_heartbeats order by daemon_type"
RUNS_SQL = """
select run_id, pipeline_name, status, start_time, end_time, update_timestamp
from runs
order by id desc
limit %(limit)s
"""
SENSOR_TICKS_SQL = """
select distinct on (selector_id) selector_id, status, timestamp, tick_body
from job_ticks
where type = 'SENSOR'
order by selector_id, id desc
"""


# --------------------------------------------------------------------------------- loaders


def churn_drift(days: int = 30) -> list[Row] | None:
    return cached_query("models_churn_drift", CHURN_DRIFT_SQL, {"days": days})


def drifted_features() -> list[Row]:
    return cached_query("models_drifted", CHURN_DRIFTED_FEATURES_SQL) or []


def churn_accuracy(days: int = 90) -> list[Row] | None:
    return cached_query("models_churn_accuracy", CHURN_ACCURACY_SQL, {"days": days})


def forecast_monitoring(days: int = 30) -> list[Row] | None:
    return cached_query("models_forecast_monitoring", FORECAST_MONITORING_SQL, {"days": days})


def quality_latest() -> list[Row] | None:
    return cached_query("models_quality_latest", QUALITY_LATEST_SQL)


def quality_failures() -> list[Row]:
    return cached_query("models_quality_failures", QUALITY_FAILURES_SQL) or []


def raw_freshness() -> list[Row] | None:
    """Every raw table with its last load (raw.watermarks); never scans the raw tables."""
    return cached_query("models_raw_freshness", RAW_FRESHNESS_SQL)


def mart_freshness() -> list[Row]:
    """Every mart with a computed_at column and its newest computed_at (index-backed)."""
    settings = get_settings()

    def load() -> list[Row]:
        rows: list[Row] = []
        with psycopg.connect(settings.warehouse_url, connect_timeout=3) as conn:
            conn.execute("set statement_timeout = '5s'")
            names = [r[0] for r in conn.execute(MART_RELATIONS_SQL).fetchall()]
            for name in names:
                query = sql.SQL(
                    "select computed_at from {} order by computed_at desc nulls last limit 1"
                ).format(sql.Identifier("marts", name))
                found = conn.execute(query).fetchone()
                rows.append({"mart": name, "computed_at": found[0] if found else None})
        return rows

    return _memoized(f"marts:{settings.warehouse_url}", load, ttl=60.0)


def sensor_heartbeat() -> Row | None:
    rows = cached_query(
        "models_sensor_heartbeat", SENSOR_HEARTBEAT_SQL, {"rule": SENSOR_HEARTBEAT_RULE}, ttl=15
    )
    return rows[0] if rows else None


def failed_deliveries(limit: int = 50) -> list[Row] | None:
    return cached_query("models_failed_deliveries", FAILED_DELIVERIES_SQL, {"limit": limit})


# ---------------------------------------------------------------------------------- health


def age_s(at: datetime | str | None, now: datetime) -> float | None:
    if at is None:
        return None
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (now - at).total_seconds()


def sensor_health(row: Row | None, now: datetime) -> Health:
    """The alert sensors' heartbeat: warn when their last good tick is older than 10 min."""
    if row is None or row.get("last_success_at") is None:
        return _health("Alert sensors", "warn", "No heartbeat yet: the alert sensors never ran")
    age = age_s(row["last_success_at"], now) or 0.0
    minutes = int(age // 60)
    if age > SENSOR_STALE_S:
        error = f" (last error: {row['last_error']})" if row.get("last_error") else ""
        return _health(
            "Alert sensors",
            "warn",
            f"Last successful tick {minutes} min ago: alerts are not being evaluated{error}",
        )
    return _health("Alert sensors", "ok", f"Last successful tick {int(age)} s ago")


def postgres_health() -> Health:
    started = time.monotonic()
    try:
        with psycopg.connect(get_settings().warehouse_url, connect_timeout=2) as conn:
            version = conn.execute("show server_version").fetchone()
    except psycopg.Error as exc:
        return _health("PostgreSQL", "down", f"Not reachable: {type(exc).__name__}")
    ms = (time.monotonic() - started) * 1000
    return _health("PostgreSQL", "ok", f"Version {version[0] if version else '?'}, {ms:.0f} ms")


def redis_health() -> Health:
    url = get_settings().redis_url
    client = redis_client(url)
    if client is None:
        return _health("Redis", "down", "Not reachable (the app reads PostgreSQL directly)")
    started = time.monotonic()
    try:
        client.ping()
        length = client.xlen("opsdash:events")
    except redis.RedisError as exc:
        return _health("Redis", "down", f"Not reachable: {type(exc).__name__}")
    ms = (time.monotonic() - started) * 1000
    return _health("Redis", "ok", f"{ms:.0f} ms, {length:,} events in the stream")


def mlflow_url() -> str:
    return get_settings().mlflow_tracking_uri.rstrip("/")


def mlflow_health() -> Health:
    try:
        response = httpx.get(f"{mlflow_url()}/health", timeout=PROBE_TIMEOUT_S, trust_env=False)
    except httpx.HTTPError as exc:
        return _health("MLflow", "down", f"Not reachable: {type(exc).__name__}")
    if response.status_code != 200:
        return _health("MLflow", "down", f"/health answered {response.status_code}")
    return _health("MLflow", "ok", f"/health OK ({response.elapsed.total_seconds() * 1000:.0f} ms)")


@dataclass(frozen=True)
class DagsterState:
    health: list[Health]
    runs: list[Row]
    sensors: list[Row]


def _dagster_rows(query: str, params: dict[str, object] | None = None) -> list[Row]:
    with (
        psycopg.connect(get_settings().dagster_pg_url, connect_timeout=2) as conn,
        conn.cursor(row_factory=dict_row) as cur,
    ):
        cur.execute("set statement_timeout = '3s'")
        cur.execute(query, params)
        return list(cur.fetchall())


def _tick_name(body: object) -> str:
    try:
        data = json.loads(str(body))
    except ValueError:
        return "?"
    origin = data.get("job_origin") or {}
    return str(data.get("job_name") or data.get("instigator_name") or origin.get("name") or "?")


def dagster_state(now: datetime | None = None) -> DagsterState:
    """Daemon heartbeats, the last runs and each sensor's last tick, from Dagster's database."""
    now = now or datetime.now(UTC)
    try:
        daemons = _dagster_rows(DAEMONS_SQL)
        runs = _dagster_rows(RUNS_SQL, {"limit": 10})
        ticks = _dagster_rows(SENSOR_TICKS_SQL)
    except psycopg.errors.UndefinedTable:
        return DagsterState([_health("Dagster", "warn", "Dagster has not run yet")], [], [])
    except psycopg.Error as exc:
        return DagsterState(
            [_health("Dagster", "down", f"Its database is not reachable: {type(exc).__name__}")],
            [],
            [],
        )
    health = []
    for daemon in daemons:
        age = age_s(daemon["timestamp"], now) or 0.0
        status = "ok" if age <= DAEMON_STALE_S else "down"
        health.append(
            _health(
                f"Dagster {daemon['daemon_type'].lower()}", status, f"Heartbeat {age:.0f} s ago"
            )
        )
    if not health:
        health.append(_health("Dagster daemon", "down", "No daemon heartbeat recorded"))
    run_rows = [
        {
            "job": r["pipeline_name"],
            "status": r["status"],
            "started": _epoch(r["start_time"]),
            "ended": _epoch(r["end_time"]),
            "run_id": r["run_id"],
        }
        for r in runs
    ]
    sensors = [
        {
            "sensor": _tick_name(t["tick_body"]),
            "status": t["status"],
            "last_tick": t["timestamp"].replace(tzinfo=UTC) if t["timestamp"] else None,
        }
        for t in ticks
    ]
    return DagsterState(health, run_rows, sorted(sensors, key=lambda s: s["sensor"]))


def _epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


def service_health() -> tuple[list[Health], DagsterState]:
    """Every probe at once, memoized for a few seconds per process."""

    def probe() -> tuple[list[Health], DagsterState]:
        dagster = dagster_state()
        now = datetime.now(UTC)
        try:
            heartbeat = sensor_health(sensor_heartbeat(), now)
        except psycopg.Error:
            heartbeat = _health("Alert sensors", "down", "Heartbeat not readable")
        checks = [postgres_health(), redis_health(), mlflow_health(), *dagster.health, heartbeat]
        return checks, dagster

    return _memoized(f"health:{get_settings().warehouse_url}", probe)


# --------------------------------------------------------------------------------- registry


def champions() -> list[Row]:
    """Each registered model's champion: version, when, its run's metrics and an MLflow link.

    Uses `ml.registry` (mlflow is imported lazily there); the MLflow client would retry for
    minutes against a dead server, so /health is probed first and retries are turned off.
    """
    uri = mlflow_url()

    def load() -> list[Row]:
        if mlflow_health().status != "ok":
            return []
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        from mlflow.exceptions import MlflowException

        from ml import registry

        client = registry.registry_client(uri)
        rows: list[Row] = []
        for name in MODEL_NAMES:
            try:
                version = client.get_model_version_by_alias(name, registry.CHAMPION)
            except MlflowException:
                rows.append({"model": name, "version": None, "link": f"{uri}/#/models/{name}"})
                continue
            metrics: dict[str, float] = {}
            if version.run_id:
                try:
                    metrics = dict(client.get_run(version.run_id).data.metrics)
                except MlflowException:
                    metrics = {}
            rows.append(
                {
                    "model": name,
                    "version": str(version.version),
                    "registered_at": datetime.fromtimestamp(version.creation_timestamp / 1000, UTC),
                    "metrics": metrics,
                    "link": f"{uri}/#/models/{name}/versions/{version.version}",
                }
            )
        return rows

    return _memoized(f"champions:{uri}", load, ttl=60.0)


def headline_metrics(metrics: dict[str, float], limit: int = 6) -> str:
    """The few run metrics worth a glance (AUC, recall, MASE ...), as one text cell."""
    wanted = ("roc_auc", "auc", "pr_auc", "recall", "precision", "brier", "mase", "coverage")
    picked = [
        (k, v) for k, v in sorted(metrics.items()) if any(w in k.lower() for w in wanted)
    ] or sorted(metrics.items())
    return ", ".join(f"{k} {v:.3f}" for k, v in picked[:limit])

"""What the Streamlit pages read, and the cache in front of PostgreSQL.

Every query is a constant with bound parameters. A result is looked up in three places, cheapest
first: a small per-process cache (so fifty sessions in one Streamlit process that refresh every
30 s cost one lookup), Redis (shared by every app process, JSON, 30 s TTL) and finally the
warehouse. Redis being down only makes the app slower: errors open a short circuit breaker and
the reads go straight to PostgreSQL.

Keys are versioned per data domain (alerts, recommendations, customers, ...): the version is the
id of the newest event on the Redis stream (`opsdash_core.events`) that touched the domain, which
every process reads at most once a second. When the alert engine, a recommendation pass or a
user's action publishes an event, the next read of that domain uses a new key, so a change shows
on the next rerun while unchanged data keeps being served from the caches. A user's action in
this process also bumps the domain at once (`invalidate`), which covers Redis being down and
changes that publish no event (silences). The pipeline publishes `customer_health_updated`,
`metric_update` and `forecast_updated` after it rebuilds those marts, so marts data shows on the
next rerun too; the TTLs bound staleness for writers that publish nothing.

This module imports neither Streamlit nor pandas, so the pure query and cache logic can be tested
without them. The Redis client and its circuit breaker live in `opsdash_core.redis_client`, shared
with the login limiter.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
import redis

from opsdash_core import events
from opsdash_core.db import fetch_all
from opsdash_core.redis_client import mark_redis_down, redis_client
from opsdash_core.settings import get_settings

REDIS_TTL_S = 30
LOCAL_TTL_S = 10.0
KEY_PREFIX = "opsdash:q:v1"
VERSION_POLL_S = 1.0
LOCAL_MAX_ENTRIES = 5_000

# Which cached domain each stream event changes: "customers" = marts.customer_health and what
# hangs off a customer, "metrics" = the daily KPI mart (Overview cards), "forecasts" = forecasts
# and the supply gaps built from them.
EVENT_DOMAINS = {
    "alert_created": "alerts",
    "alert_updated": "alerts",
    "recommendation_created": "recommendations",
    "recommendation_updated": "recommendations",
    "customer_health_updated": "customers",
    "forecast_updated": "forecasts",
    "metric_update": "metrics",
}

Row = dict[str, Any]


class Rows(list[Row]):
    """A cached result: the rows plus a digest of their JSON, so a page can build its display
    objects (frames, chart specs) once per distinct result (`view_cache`)."""

    __slots__ = ("digest",)

    def __init__(self, rows: list[Row], digest: str) -> None:
        super().__init__(rows)
        self.digest = digest


def _rows(text: str | bytes) -> Rows | None:
    """Rows of a JSON text (Redis value or normalized result), with the text's digest."""
    raw = text.encode() if isinstance(text, str) else text
    parsed = json.loads(raw)
    if parsed is None:
        return None
    return Rows(parsed, hashlib.blake2b(raw, digest_size=12).hexdigest())


# ------------------------------------------------------------------------------------ queries

# Each count on its own, so each reads the risk_tier index only (an index-only scan of a few
# MB) where one scan with filtered aggregates read all of marts.customer_health.
HEALTH_SUMMARY_SQL = """
select (select count(*) from marts.customer_health) as customers,
       (select count(*) from marts.customer_health
        where risk_tier in ('high', 'critical')) as at_risk,
       (select count(*) from marts.customer_health where risk_tier = 'critical') as critical,
       (select max(computed_at) from marts.customer_health) as computed_at
"""

TIER_COUNTS_SQL = """
select risk_tier, count(*) as customers
from marts.customer_health
group by risk_tier
"""

# The pipeline counts the tiers once per cycle (marts.risk_tiers_daily, today's row): at a
# million customers the group-by above costs ~60 ms per page view; it stays as the fallback
# for a warehouse that has not built the daily counts yet.
TIERS = ("low", "medium", "high", "critical")
TIER_COUNTS_DAILY_SQL = """
select low_customers, medium_customers, high_customers, critical_customers
from marts.risk_tiers_daily
order by snapshot_date desc
limit 1
"""

# The limit is applied before the lateral join so that only the top rows look up their score.
TOP_RISK_SQL = """
with top as (
    select customer_id, risk_score, risk_tier, days_since_last_session, sessions_30d,
           avg_rating_30d, inbound_calls_30d, tenure_days
    from marts.customer_health
    order by risk_score desc, customer_id
    limit %(limit)s
)
select top.*, latest.churn_probability, latest.top_factors
from top
left join lateral (
    select s.churn_probability, s.top_factors
    from ml.churn_scores as s
    where s.customer_id = top.customer_id
    order by s.scored_at desc
    limit 1
) as latest on true
order by top.risk_score desc, top.customer_id
"""

# Used while ml.churn_scores does not exist (a warehouse migrated by an older revision).
TOP_RISK_NO_SCORES_SQL = """
select customer_id, risk_score, risk_tier, days_since_last_session, sessions_30d,
       avg_rating_30d, inbound_calls_30d, tenure_days,
       null::double precision as churn_probability, null::jsonb as top_factors
from marts.customer_health
order by risk_score desc, customer_id
limit %(limit)s
"""

OPEN_ALERTS_SQL = """
select count(*) as open_alerts
from app.alerts
where status = 'open'
"""

LATEST_ALERTS_SQL = """
select id, severity, status, title, rule, entity_type, entity_id, created_at
from app.alerts
where status in ('open', 'acknowledged')
order by created_at desc, id desc
limit %(limit)s
"""

# ------------------------------------------------------------------------------------- cache

_local: dict[str, tuple[float, Any]] = {}
_key_locks: dict[str, threading.Lock] = {}
_local_lock = threading.Lock()


def _jsonable(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot cache a {type(value).__name__}")


def _normalize(rows: list[Row] | None) -> Rows | None:
    """The JSON round trip every result takes, so Redis hits and misses return the same types."""
    return _rows(json.dumps(rows, default=_jsonable))


def cache_key(
    name: str, sql: str, params: Mapping[str, object] | None, url: str, version: str = ""
) -> str:
    """Key for one query result. The URL is part of it: two warehouses may share one Redis;
    so is the data version of the query's domain (a new version = new keys)."""
    material = json.dumps([url, sql, dict(params or {})], sort_keys=True, default=str)
    digest = hashlib.sha256(material.encode()).hexdigest()[:24]
    return f"{KEY_PREFIX}:{name}:{version}:{digest}" if version else f"{KEY_PREFIX}:{name}:{digest}"


def clear_cache() -> None:
    """Forget the per-process cache and versions (tests, and after the warehouse URL changes)."""
    global _stream_last, _version_base, _version_checked
    with _local_lock:
        _local.clear()
    with _version_lock:
        _versions.clear()
        _stream_last = _version_base = None
        _version_checked = 0.0


# ----------------------------------------------------------------------------- versions

_versions: dict[str, str] = {}
_version_lock = threading.Lock()
_stream_last: str | None = None
_version_base: str | None = None
_version_checked = 0.0
_bumps = 0


def data_version(domain: str) -> str:
    """The current version token of a domain (see the module doc); polls the event stream at
    most every VERSION_POLL_S seconds per process."""
    global _version_checked
    if time.monotonic() >= _version_checked + VERSION_POLL_S:
        with _version_lock:
            if time.monotonic() >= _version_checked + VERSION_POLL_S:
                _poll_events()
                _version_checked = time.monotonic()
    return _versions.get(domain) or _version_base or "0"


def _poll_events() -> None:
    """Advance the versions with the events published since the last poll (under the lock)."""
    global _stream_last, _version_base
    url = get_settings().redis_url
    if _stream_last is None:  # start at the stream's end: the data read from now on is current
        _stream_last = _version_base = events.latest_id(url=url)
        return
    new = events.read_since(_stream_last, count=1000, url=url)
    for event in new:
        domain = EVENT_DOMAINS.get(event.type)
        if domain:
            _versions[domain] = event.id
    if new:
        _stream_last = new[-1].id


def invalidate(*domains: str) -> None:
    """A user changed these domains in this process: read them afresh from now on."""
    global _bumps
    with _version_lock:
        _bumps += 1
        for domain in domains:
            base = _versions.get(domain) or _version_base or "0"
            _versions[domain] = f"{base.split('+')[0]}+{_bumps}"


def cached_query(
    name: str,
    sql: str,
    params: Mapping[str, object] | None = None,
    *,
    ttl: int = REDIS_TTL_S,
    domain: str | None = None,
) -> list[Row] | None:
    """Rows of `sql`, or None when a relation it reads does not exist (yet).

    `domain` versions the key (see the module doc). One thread per process runs a given query
    at a time; the others wait and take its result, so a burst of refreshing sessions never
    stampedes the warehouse.
    """
    settings = get_settings()
    version = data_version(domain) if domain else ""
    key = cache_key(name, sql, params, settings.warehouse_url, version)
    local_ttl = min(LOCAL_TTL_S, ttl)
    hit = _local.get(key)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    with _local_lock:
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:
        hit = _local.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        rows = _from_redis(key, settings.redis_url)
        if rows is _MISS:
            rows = _from_warehouse(sql, params, settings.warehouse_url)
            _to_redis(key, rows, ttl, settings.redis_url)
        if len(_local) >= LOCAL_MAX_ENTRIES:
            _prune_local()
        _local[key] = (time.monotonic() + local_ttl, rows)
        return rows  # type: ignore[return-value]


def _prune_local() -> None:
    """Drop expired entries (old versions' keys) so the per-process cache stays bounded."""
    now = time.monotonic()
    with _local_lock:
        for key in [k for k, (expires, _) in _local.items() if expires <= now]:
            _local.pop(key, None)
            _key_locks.pop(key, None)
        if len(_local) >= LOCAL_MAX_ENTRIES:
            _local.clear()


_MISS = object()


def _from_redis(key: str, url: str) -> object:
    client = redis_client(url)
    if client is None:
        return _MISS
    try:
        raw = client.get(key)
    except redis.RedisError as exc:
        mark_redis_down(url, exc)
        return _MISS
    return _MISS if raw is None else _rows(raw)


def _to_redis(key: str, rows: list[Row] | None, ttl: int, url: str) -> None:
    client = redis_client(url)
    if client is None:
        return
    try:
        client.set(key, json.dumps(rows), ex=ttl)
    except redis.RedisError as exc:
        mark_redis_down(url, exc)


def _from_warehouse(sql: str, params: Mapping[str, object] | None, url: str) -> Rows | None:
    try:
        rows = fetch_all(url, sql, dict(params) if params else None)
    except psycopg.errors.UndefinedTable:
        return None
    return _normalize(rows)


# ---------------------------------------------------------------------------------- loaders


@dataclass(frozen=True)
class HealthSummary:
    """Headline numbers of marts.customer_health (one row per active customer)."""

    customers: int
    at_risk: int
    critical: int
    computed_at: datetime | None


def parse_ts(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def health_summary() -> HealthSummary | None:
    """None while the pipeline has not built marts.customer_health."""
    rows = cached_query("health_summary", HEALTH_SUMMARY_SQL, domain="customers")
    if not rows:
        return None
    row = rows[0]
    return HealthSummary(
        customers=int(row["customers"]),
        at_risk=int(row["at_risk"]),
        critical=int(row["critical"]),
        computed_at=parse_ts(row["computed_at"]),
    )


def tier_counts() -> dict[str, int] | None:
    """Customers per risk tier (tiers with none left out); None while the mart does not exist."""
    daily = cached_query("tier_counts_daily", TIER_COUNTS_DAILY_SQL, domain="customers")
    if daily:
        counts = {tier: int(daily[0][f"{tier}_customers"] or 0) for tier in TIERS}
        return {tier: n for tier, n in counts.items() if n}
    rows = cached_query("tier_counts", TIER_COUNTS_SQL, domain="customers")
    if rows is None:
        return None
    return {str(r["risk_tier"]): int(r["customers"]) for r in rows}


def top_risk_customers(limit: int = 50) -> list[Row] | None:
    """The riskiest customers with their latest churn probability and top factors, if scored."""
    params = {"limit": limit}
    rows = cached_query("top_risk", TOP_RISK_SQL, params, domain="customers")
    if rows is None:
        rows = cached_query(
            "top_risk_no_scores", TOP_RISK_NO_SCORES_SQL, params, domain="customers"
        )
    return rows


def open_alert_count() -> int | None:
    """Alerts nobody has acknowledged yet; None while app.alerts does not exist."""
    rows = cached_query("open_alerts", OPEN_ALERTS_SQL, domain="alerts")
    return None if rows is None else int(rows[0]["open_alerts"])


def latest_alerts(limit: int = 20) -> list[Row] | None:
    """The newest unresolved alerts (open or acknowledged)."""
    return cached_query("latest_alerts", LATEST_ALERTS_SQL, {"limit": limit}, domain="alerts")

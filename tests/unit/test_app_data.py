"""The query cache in front of PostgreSQL, with Redis unavailable (no services)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest

from app_streamlit import data
from opsdash_core.settings import reset_settings


@pytest.fixture
def no_services(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, object]]]:
    """Redis and the warehouse replaced: Redis is 'down', queries are recorded."""
    calls: list[tuple[str, object]] = []
    monkeypatch.setenv("WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    reset_settings()
    data.clear_cache()
    monkeypatch.setattr(data, "redis_client", lambda url=None: None)
    monkeypatch.setattr(data.events, "latest_id", lambda url=None: "0-0")
    monkeypatch.setattr(data.events, "read_since", lambda *a, **k: [])
    yield calls
    data.clear_cache()
    monkeypatch.undo()
    reset_settings()


def test_results_are_cached_per_process(no_services: list, monkeypatch: pytest.MonkeyPatch) -> None:
    def fetch(url: str, sql: str, params: object) -> list[dict]:
        no_services.append((sql, params))
        return [{"n": Decimal("1.5"), "at": datetime(2026, 1, 1, tzinfo=UTC)}]

    monkeypatch.setattr(data, "fetch_all", fetch)
    first = data.cached_query("q", "select 1", {"limit": 3})
    second = data.cached_query("q", "select 1", {"limit": 3})
    assert first == second == [{"n": 1.5, "at": "2026-01-01T00:00:00+00:00"}]
    assert no_services == [("select 1", {"limit": 3})]
    data.cached_query("q", "select 1", {"limit": 4})
    assert len(no_services) == 2  # other parameters, other entry


def test_missing_relation_reads_as_none(monkeypatch: pytest.MonkeyPatch, no_services: list) -> None:
    def fetch(url: str, sql: str, params: object) -> list[dict]:
        raise psycopg.errors.UndefinedTable("relation does not exist")

    monkeypatch.setattr(data, "fetch_all", fetch)
    assert data.health_summary() is None
    assert data.tier_counts() is None
    assert data.top_risk_customers() is None
    assert data.open_alert_count() is None


def test_loaders_build_typed_results(monkeypatch: pytest.MonkeyPatch, no_services: list) -> None:
    answers = {
        data.HEALTH_SUMMARY_SQL: [
            {"customers": 10, "at_risk": 3, "critical": 1, "computed_at": datetime(2026, 1, 1)}
        ],
        data.TIER_COUNTS_DAILY_SQL: [],  # built, but no day counted yet
        data.TIER_COUNTS_SQL: [{"risk_tier": "low", "customers": 7}],
        data.OPEN_ALERTS_SQL: [{"open_alerts": 4}],
    }
    monkeypatch.setattr(data, "fetch_all", lambda url, sql, params: answers[sql])
    summary = data.health_summary()
    assert summary == data.HealthSummary(10, 3, 1, datetime(2026, 1, 1))
    assert data.tier_counts() == {"low": 7}
    assert data.open_alert_count() == 4


def test_tier_counts_come_from_the_daily_counts_when_built(
    monkeypatch: pytest.MonkeyPatch, no_services: list
) -> None:
    def fetch(url: str, sql: str, params: object) -> list[dict]:
        no_services.append((sql, params))
        if sql == data.TIER_COUNTS_DAILY_SQL:
            return [
                {
                    "low_customers": 5,
                    "medium_customers": 0,
                    "high_customers": 2,
                    "critical_customers": 1,
                }
            ]
        raise AssertionError("the group-by over every customer should not run")

    monkeypatch.setattr(data, "fetch_all", fetch)
    assert data.tier_counts() == {"low": 5, "high": 2, "critical": 1}
    assert len(no_services) == 1


def test_cache_key_depends_on_warehouse_and_parameters() -> None:
    a = data.cache_key("q", "select 1", {"limit": 1}, "postgresql://h/a")
    assert a.startswith("opsdash:q:v1:q:")
    assert a == data.cache_key("q", "select 1", {"limit": 1}, "postgresql://h/a")
    assert a != data.cache_key("q", "select 1", {"limit": 1}, "postgresql://h/b")
    assert a != data.cache_key("q", "select 1", {"limit": 2}, "postgresql://h/a")


def test_redis_circuit_breaker_skips_redis_after_an_error() -> None:
    url = "redis://127.0.0.1:1/9"
    assert data.redis_client(url) is not None
    data.mark_redis_down(url, ConnectionError("refused"))
    assert data.redis_client(url) is None


def test_a_domain_event_moves_the_version_and_the_key(
    no_services: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine (or another app process) publishes an alert event: the next read of the alerts
    domain misses every cache; other domains keep their keys."""
    stream: list[data.events.Event] = []
    monkeypatch.setattr(data.events, "latest_id", lambda url=None: "5-0")
    monkeypatch.setattr(
        data.events, "read_since", lambda last, **k: [e for e in stream if e.id > last]
    )
    monkeypatch.setattr(data, "VERSION_POLL_S", 0.0)
    reads: list[str] = []

    def fetch(url: str, sql: str, params: object) -> list[dict]:
        reads.append(sql)
        return [{"n": len(reads)}]

    monkeypatch.setattr(data, "fetch_all", fetch)
    assert data.cached_query("a", "select 'a'", domain="alerts") == [{"n": 1}]
    assert data.cached_query("r", "select 'r'", domain="recommendations") == [{"n": 2}]
    assert data.cached_query("a", "select 'a'", domain="alerts") == [{"n": 1}]
    assert data.data_version("alerts") == "5-0"
    stream.append(data.events.Event(id="6-0", type="alert_updated", data={"id": 1}))
    stream.append(data.events.Event(id="7-0", type="metric_update", data={}))
    assert data.cached_query("a", "select 'a'", domain="alerts") == [{"n": 3}]
    assert data.data_version("alerts") == "6-0"
    assert data.cached_query("r", "select 'r'", domain="recommendations") == [{"n": 2}]


def test_invalidate_after_a_users_action(
    no_services: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without any event (Redis down), the acting process still reads its change at once."""
    reads: list[str] = []

    def fetch(url: str, sql: str, params: object) -> list[dict]:
        reads.append(sql)
        return [{"n": len(reads)}]

    monkeypatch.setattr(data, "fetch_all", fetch)
    assert data.cached_query("a", "select 'a'", domain="alerts") == [{"n": 1}]
    assert data.cached_query("a", "select 'a'", domain="alerts") == [{"n": 1}]
    data.invalidate("alerts")
    assert data.cached_query("a", "select 'a'", domain="alerts") == [{"n": 2}]
    data.invalidate("alerts")
    assert data.data_version("alerts").count("+") == 1


def test_the_local_cache_stays_bounded(no_services: list, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "LOCAL_MAX_ENTRIES", 5)
    monkeypatch.setattr(data, "fetch_all", lambda url, sql, params: [])
    for i in range(20):
        data.cached_query("q", "select 1", {"i": i})
    assert len(data._local) <= 5


def test_pipeline_events_refresh_the_marts_they_name(
    no_services: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `customer_health_updated`, `forecast_updated` or `metric_update` event (as the pipeline
    publishes after rebuilding those marts) makes the next read of exactly that data go back
    to PostgreSQL, long before the 30 s TTL; the other pages' data stays cached."""
    from app_streamlit import customers_data, forecasts_data, overview_data

    stream: list[data.events.Event] = []
    monkeypatch.setattr(data.events, "latest_id", lambda url=None: "5-0")
    monkeypatch.setattr(
        data.events, "read_since", lambda last, **k: [e for e in stream if e.id > last]
    )
    monkeypatch.setattr(data, "VERSION_POLL_S", 0.0)
    reads: list[str] = []

    def fetch(url: str, sql: str, params: object) -> list[dict]:
        reads.append(sql)
        return [{"customer_id": 3, "kpi_date": "2026-01-01", "hour_at": "x", "n": len(reads)}]

    monkeypatch.setattr(data, "fetch_all", fetch)

    def read_all() -> tuple[object, object, object, object]:
        return (
            customers_data.customer_detail(3),
            data.top_risk_customers(5),
            forecasts_data.gaps(),
            overview_data.kpi_rows(),
        )

    first = read_all()
    assert read_all() == first
    assert len(reads) == 4

    stream.append(data.events.Event(id="6-0", type="customer_health_updated", data={}))
    customer, summary, gaps, kpis = read_all()
    assert customer != first[0]
    assert summary != first[1]
    assert (gaps, kpis) == first[2:]
    assert len(reads) == 6

    stream.append(data.events.Event(id="7-0", type="forecast_updated", data={"run_id": "r"}))
    assert read_all()[2] != first[2]
    assert len(reads) == 7
    stream.append(data.events.Event(id="8-0", type="metric_update", data={}))
    assert read_all()[3] != first[3]
    assert len(reads) == 8
    assert read_all()[3] == read_all()[3]
    assert len(reads) == 8

"""Live events for refreshed data (`opsdash_core.refresh_events`) on the real Redis Stream and
a real warehouse: what a reader gets back, and that publishing never raises when the counts or
Redis are unavailable. The Dagster assets that call it: test_dbt_assets.py (customer_health,
ops_kpis_daily) and test_forecasting.py (demand forecasts)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime

import psycopg
import pytest

from opsdash_core import events
from opsdash_core.db import connect
from opsdash_core.refresh_events import publish_forecast_updated, publish_mart_refreshed
from opsdash_core.settings import reset_settings
from opsdash_stack.sinks import free_port

pytestmark = pytest.mark.integration

HEALTH = ("marts", "customer_health")


def factory(url: str) -> Callable[[], AbstractContextManager[psycopg.Connection]]:
    return lambda: connect(url)


@pytest.fixture
def marts(warehouse_url: str) -> str:
    with connect(warehouse_url) as conn:
        conn.execute(
            "create schema if not exists marts;"
            " create table marts.customer_health (customer_id bigint primary key,"
            "  risk_tier text not null, computed_at timestamptz not null);"
            " insert into marts.customer_health values (1, 'critical', '2026-12-03 06:00Z'),"
            "  (2, 'high', '2026-12-03 06:05Z'), (3, 'low', '2026-12-03 06:05Z');"
            " create table marts.ops_kpis_daily (kpi_date date primary key);"
            " insert into marts.ops_kpis_daily values ('2026-12-02'), ('2026-12-03')"
        )
    return warehouse_url


@pytest.fixture
def redis_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings pointing at a port where no Redis listens."""
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_settings()
    yield
    monkeypatch.delenv("REDIS_URL")
    reset_settings()


def test_refreshed_marts_and_forecasts_are_read_back_from_the_stream(marts: str) -> None:
    before = events.latest_id()
    assert publish_mart_refreshed(HEALTH, "run-a", factory(marts)) is not None
    assert publish_mart_refreshed(("marts", "ops_kpis_daily"), "run-a", factory(marts))
    # A model whose refresh the app does not follow publishes nothing.
    assert publish_mart_refreshed(("staging", "stg_x"), "run-a", factory(marts)) is None
    assert publish_forecast_updated("fc-1", {"rows": 672, "subjects": 4}) is not None

    got = [(e.type, e.data) for e in events.read_since(before, count=1000)]
    assert [t for t, _ in got] == ["customer_health_updated", "metric_update", "forecast_updated"]
    health, kpis, forecast = (d for _, d in got)
    # the customers the newest build rewrote (06:05), not the whole mart
    assert {k: health[k] for k in ("relation", "run_id", "customers_refreshed")} == {
        "relation": "marts.customer_health",
        "run_id": "run-a",
        "customers_refreshed": 2,
    }
    assert (health["at_risk_refreshed"], health["critical_refreshed"]) == (1, 0)
    assert datetime.fromisoformat(health["as_of"]) == datetime(2026, 12, 3, 6, 5, tzinfo=UTC)
    assert (kpis["days"], kpis["kpi_date"]) == (2, "2026-12-03")
    assert (forecast["run_id"], forecast["rows"], forecast["subjects"]) == ("fc-1", 672, 4)


def test_an_unreadable_mart_still_announces_its_refresh(warehouse_url: str) -> None:
    """The counts are extra: without them (no such table here) the event still goes out."""
    before = events.latest_id()
    assert publish_mart_refreshed(HEALTH, "run-b", factory(warehouse_url)) is not None
    (event,) = events.read_since(before)
    assert (event.type, event.data["run_id"]) == ("customer_health_updated", "run-b")
    assert "customers_refreshed" not in event.data


@pytest.mark.usefixtures("redis_down")
def test_publishing_with_redis_down_returns_none_and_does_not_raise(marts: str) -> None:
    assert publish_mart_refreshed(HEALTH, "run-c", factory(marts)) is None
    assert publish_forecast_updated("fc-2", {"rows": 1}) is None

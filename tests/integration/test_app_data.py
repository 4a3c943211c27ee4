"""The overview queries against a real warehouse, and the Redis cache in front of them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest

from app_streamlit import data
from opsdash_core.db import close_pools
from opsdash_core.settings import get_settings, reset_settings
from tests.integration.test_app_streamlit import CUSTOMER_HEALTH

pytestmark = pytest.mark.integration


@pytest.fixture
def wh(warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("WAREHOUSE_URL", warehouse_url)
    reset_settings()
    data.clear_cache()
    yield warehouse_url
    close_pools()
    data.clear_cache()
    monkeypatch.undo()
    reset_settings()


def _redis_up() -> bool:
    client = data.redis_client(get_settings().redis_url)
    try:
        return bool(client and client.ping())
    except Exception:
        return False


def test_missing_mart_reads_as_no_data(wh: str) -> None:
    assert data.health_summary() is None
    assert data.tier_counts() is None
    assert data.top_risk_customers() is None
    assert data.open_alert_count() == 0
    assert data.latest_alerts() == []


def test_queries_read_the_mart(wh: str) -> None:
    with psycopg.connect(wh, autocommit=True) as conn:
        conn.execute(CUSTOMER_HEALTH)
    summary = data.health_summary()
    assert summary is not None
    assert (summary.customers, summary.at_risk, summary.critical) == (6, 3, 1)
    assert summary.computed_at is not None
    assert data.tier_counts() == {"low": 1, "medium": 2, "high": 2, "critical": 1}
    top = data.top_risk_customers(limit=2)
    assert [r["customer_id"] for r in top or []] == [6, 5]
    assert top is not None
    assert top[0]["churn_probability"] is None  # not scored yet


def test_results_are_shared_through_redis(wh: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if not _redis_up():
        pytest.skip("test Redis not reachable")
    with psycopg.connect(wh, autocommit=True) as conn:
        conn.execute(CUSTOMER_HEALTH)
    first = data.tier_counts()
    # the key carries the data version of the customers' domain: the newest event of that
    # kind on the stream, which earlier tests sharing this Redis may have published
    key = data.cache_key(
        "tier_counts", data.TIER_COUNTS_SQL, None, wh, data.data_version("customers")
    )
    client = data.redis_client()
    assert client is not None
    assert 0 < client.ttl(key) <= data.REDIS_TTL_S
    assert json.loads(client.get(key)) is not None

    # Another process (empty local cache) gets the rows from Redis, not from PostgreSQL.
    data.clear_cache()

    def no_warehouse(*args: object) -> None:
        raise AssertionError("should have been served from Redis")

    monkeypatch.setattr(data, "fetch_all", no_warehouse)
    assert data.tier_counts() == first
    client.delete(key)

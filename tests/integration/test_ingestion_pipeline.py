"""Ingestion from the simulated marketplace and its support API, end to end on real services."""

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from opsdash_core.settings import PROJECT_ROOT, get_settings
from opsdash_stack.services.simulator import support_api_process
from opsdash_stack.sinks import free_port
from orchestration.lib.ingest.loader import ingest_table, source_fetcher
from orchestration.lib.ingest.support_client import RetryPolicy, SupportApiClient, SupportApiError
from orchestration.lib.ingest.tables import BY_NAME, TABLES

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
FAST = RetryPolicy(attempts=5, base_delay=0.05, max_delay=2.0)


@pytest.fixture
def marketplace(source_url: str) -> str:
    """A small simulated marketplace in a scratch source database."""
    subprocess.run(
        [str(BIN / "opsdash"), "sim", "generate", "--scale", "600", "--days", "40"],
        env={**os.environ, "SOURCE_URL": source_url},
        check=True,
        cwd=PROJECT_ROOT,
        capture_output=True,
    )
    return source_url


@pytest.fixture
def support_api(marketplace: str) -> Iterator[str]:
    with support_api_process(marketplace, free_port()) as url:
        yield url


def control(api: str, **body: object) -> None:
    token = get_settings().support_api_token
    resp = httpx.post(
        f"{api}/_control/faults", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    resp.raise_for_status()


def ingest_calls(warehouse_url: str, api: str, sleeps: list[float] | None = None) -> object:
    client = SupportApiClient(
        api,
        get_settings().support_api_token,
        policy=FAST,
        page_size=200,
        sleep=(sleeps.append if sleeps is not None else lambda _s: None),
    )
    try:
        return ingest_table(warehouse_url, BY_NAME["inbound_calls"], client.inbound_calls)
    finally:
        client.close()


def ingest_source_tables(warehouse_url: str, source_url: str) -> None:
    for spec in TABLES:
        if spec.source:
            ingest_table(warehouse_url, spec, source_fetcher(source_url, spec))


def scalar(url: str, query: str) -> object:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchone()[0]


def test_bad_batch_is_quarantined_and_nothing_valid_is_lost(
    warehouse_url: str, marketplace: str, support_api: str
) -> None:
    ingest_source_tables(warehouse_url, marketplace)
    ingest_calls(warehouse_url, support_api)
    subprocess.run(
        [str(BIN / "opsdash"), "sim", "inject", "bad-batch", "--rows", "40"],
        env={**os.environ, "SOURCE_URL": marketplace},
        check=True,
        cwd=PROJECT_ROOT,
        capture_output=True,
    )
    ingest_source_tables(warehouse_url, marketplace)
    ingest_calls(warehouse_url, support_api)

    with psycopg.connect(warehouse_url) as conn:
        reasons = [
            r[0]
            for r in conn.execute("select reason from raw.quarantine where table_name = 'sessions'")
        ]
        quarantined_ids = {
            int(r[0])
            for r in conn.execute(
                "select source_key from raw.quarantine where table_name = 'sessions'"
            )
        }
        raw_ids = {r[0] for r in conn.execute("select id from raw.sessions")}
        call_reasons = [
            r[0]
            for r in conn.execute(
                "select reason from raw.quarantine where table_name = 'inbound_calls'"
            )
        ]
    with psycopg.connect(marketplace) as conn:
        source_ids = {r[0] for r in conn.execute("select id from tutoring_sessions")}

    assert any("rating" in r for r in reasons)
    assert any("customer_id" in r for r in reasons)
    assert any("future" in r for r in reasons)
    assert call_reasons, "invalid support calls should be quarantined too"
    # Every source row is accounted for: loaded or quarantined, never both, never lost.
    assert raw_ids | quarantined_ids == source_ids
    assert not raw_ids & quarantined_ids


def test_support_api_500s_then_200s_is_retried_to_success(
    warehouse_url: str, marketplace: str, support_api: str
) -> None:
    control(support_api, fail_next=3, status=500)
    sleeps: list[float] = []
    report = ingest_calls(warehouse_url, support_api, sleeps)
    expected = scalar(marketplace, "select count(*) from support.inbound_calls")
    assert len(sleeps) == 3
    # Exponential backoff: each wait is longer than the one before, despite the jitter.
    assert all(b > a for a, b in itertools.pairwise(sleeps))
    assert report.rows_upserted == expected
    assert scalar(warehouse_url, "select count(*) from raw.inbound_calls") == expected


def test_429_retry_after_is_honoured(
    warehouse_url: str, marketplace: str, support_api: str
) -> None:
    control(support_api, fail_next=1, status=429, retry_after=1.5)
    sleeps: list[float] = []
    ingest_calls(warehouse_url, support_api, sleeps)
    assert sleeps
    assert sleeps[0] >= 1.5


def test_failing_api_fails_loudly_and_keeps_the_watermark(
    warehouse_url: str, marketplace: str, support_api: str
) -> None:
    ingest_calls(warehouse_url, support_api)
    before = scalar(
        warehouse_url, "select watermark from raw.watermarks where table_name = 'inbound_calls'"
    )
    rows_before = scalar(warehouse_url, "select count(*) from raw.inbound_calls")
    subprocess.run(
        [str(BIN / "opsdash"), "sim", "live", "--once"],
        env={**os.environ, "SOURCE_URL": marketplace},
        check=True,
        cwd=PROJECT_ROOT,
        capture_output=True,
    )
    control(support_api, fail_next=100, status=503)
    with pytest.raises(SupportApiError, match=r"still failing after 5 attempts.*watermark"):
        ingest_calls(warehouse_url, support_api)
    after = scalar(
        warehouse_url, "select watermark from raw.watermarks where table_name = 'inbound_calls'"
    )
    assert after == before
    assert scalar(warehouse_url, "select count(*) from raw.inbound_calls") == rows_before

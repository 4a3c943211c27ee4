"""After the test stack's PostgreSQL restarts, what kept connections recovers by itself: the
app's pooled connections (checked before use) and a fresh ingestion call, with no restart of
the process holding them. Marked e2e: it restarts a service, so it runs after the other tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from opsdash_core.db import close_pools, fetch_all, pool
from opsdash_core.settings import get_settings
from opsdash_stack.services import postgres
from orchestration.lib.ingest.loader import ingest_table, source_fetcher
from orchestration.lib.ingest.tables import BY_NAME
from tests.integration.test_ingestion import insert_sessions, make_session

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SESSIONS = BY_NAME["sessions"]


def test_pool_and_ingestion_recover_after_a_postgres_restart(
    warehouse_url: str, source_url: str
) -> None:
    s = get_settings()
    now = datetime.now(UTC)
    insert_sessions(source_url, [make_session(i, now) for i in range(1, 6)])
    first = ingest_table(
        warehouse_url, SESSIONS, source_fetcher(source_url, SESSIONS), run_id="before-restart"
    )
    assert first.rows_upserted == 5
    held = psycopg.connect(warehouse_url)
    try:
        # Two pooled connections, idle in the pool when the server goes away.
        p = pool(warehouse_url)
        with p.connection(), p.connection():
            pass
        assert p.get_stats()["pool_available"] == 2

        postgres.stop(s)
        postgres.start(s)

        # The restart really killed the connections opened before it ...
        with pytest.raises(psycopg.OperationalError):
            held.execute("select 1")
        # ... yet every pooled query after it succeeds, the first one included.
        for _ in range(3):
            rows = fetch_all(warehouse_url, "select count(*) as n from raw.sessions")
            assert rows == [{"n": 5}]
        # A new ingestion call (what the next Dagster run does) loads the rows written meanwhile.
        insert_sessions(
            source_url,
            [make_session(i, now, updated_at=now - timedelta(minutes=1)) for i in range(6, 9)],
        )
        again = ingest_table(
            warehouse_url, SESSIONS, source_fetcher(source_url, SESSIONS), run_id="after-restart"
        )
        assert again.rows_upserted == 3
        assert fetch_all(warehouse_url, "select count(*) as n from raw.sessions") == [{"n": 8}]
    finally:
        held.close()
        close_pools()

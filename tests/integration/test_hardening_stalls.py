"""`watermark_stalls` on real ingestion: a table whose new rows all fail their contract is
reported once the bad rows outlast the window, and clears when valid rows move the watermark;
a bad row among valid ones is never a stall."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from opsdash_core.ingest_health import watermark_stalls
from orchestration.lib.ingest.loader import ingest_table, source_fetcher
from orchestration.lib.ingest.tables import BY_NAME
from tests.integration.test_ingestion import insert_sessions, make_session

pytestmark = pytest.mark.integration

SESSIONS = BY_NAME["sessions"]


def _ingest(warehouse_url: str, source_url: str, run_id: str) -> None:
    ingest_table(warehouse_url, SESSIONS, source_fetcher(source_url, SESSIONS), run_id=run_id)


def _stalled(warehouse_url: str, window: timedelta) -> dict[str, int]:
    with psycopg.connect(warehouse_url) as conn:
        return {s.table_name: s.quarantined_rows for s in watermark_stalls(conn, window)}


def test_a_table_whose_new_rows_are_all_quarantined_is_a_stall(
    warehouse_url: str, source_url: str
) -> None:
    now = datetime.now(UTC)
    two_hours_ago = now - timedelta(hours=2)
    # Valid rows up to two hours ago, an old bad row among them: loaded, no stall.
    insert_sessions(
        source_url,
        [make_session(i, now, updated_at=two_hours_ago - timedelta(minutes=i)) for i in (1, 2)]
        + [make_session(3, now, updated_at=two_hours_ago - timedelta(minutes=3), rating=9)],
    )
    _ingest(warehouse_url, source_url, "r1")
    assert _stalled(warehouse_url, timedelta(minutes=15)) == {}

    # Since then every new row is invalid: the watermark stays two hours back.
    insert_sessions(
        source_url,
        [make_session(i, now, updated_at=now - timedelta(minutes=i), rating=0) for i in (4, 5)],
    )
    _ingest(warehouse_url, source_url, "r2")
    assert _stalled(warehouse_url, timedelta(minutes=15)) == {"sessions": 2}
    assert _stalled(warehouse_url, timedelta(hours=3)) == {}  # not yet longer than the window

    # A valid row moves the watermark past the bad ones: the stall clears.
    insert_sessions(source_url, [make_session(6, now, updated_at=now - timedelta(seconds=5))])
    _ingest(warehouse_url, source_url, "r3")
    assert _stalled(warehouse_url, timedelta(minutes=15)) == {}

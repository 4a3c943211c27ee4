"""A table whose new rows all fail their contract stalls its watermark: the `watermark_stuck`
alert rule (alerting/rules.yaml, the one production check) fires on real ingestion, and clears
once a valid row moves the watermark; a bad row newer than the watermark by less than the
rule's `stuck_minutes` does not fire it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerting.config import load_rules
from alerting.engine import Firing, fetch_firing
from orchestration.lib.ingest.loader import ingest_table, source_fetcher
from orchestration.lib.ingest.tables import BY_NAME
from tests.integration.test_ingestion import insert_sessions, make_session

pytestmark = pytest.mark.integration

SESSIONS = BY_NAME["sessions"]


def _ingest(warehouse_url: str, source_url: str, run_id: str) -> None:
    ingest_table(warehouse_url, SESSIONS, source_fetcher(source_url, SESSIONS), run_id=run_id)


def _stuck(warehouse_url: str) -> dict[str, Firing]:
    """What the rule finds now, as the alert sensor evaluates it every minute."""
    rule = load_rules(override=False).rule("watermark_stuck")
    with psycopg.connect(warehouse_url) as conn:
        return fetch_firing(conn, rule, datetime.now(UTC))


def test_a_table_whose_new_rows_are_all_quarantined_raises_watermark_stuck(
    warehouse_url: str, source_url: str
) -> None:
    now = datetime.now(UTC)
    two_hours_ago = now - timedelta(hours=2)
    insert_sessions(
        source_url,
        [make_session(i, now, updated_at=two_hours_ago - timedelta(minutes=i)) for i in (1, 2)],
    )
    _ingest(warehouse_url, source_url, "r1")
    assert _stuck(warehouse_url) == {}  # a quiet table is not a stuck one

    # Since then every new row is invalid (rating 0): the watermark stays two hours back.
    insert_sessions(
        source_url,
        [make_session(i, now, updated_at=now - timedelta(minutes=i), rating=0) for i in (4, 5)],
    )
    _ingest(warehouse_url, source_url, "r2")
    stuck = _stuck(warehouse_url)
    assert list(stuck) == ["sessions"]
    assert stuck["sessions"].details["quarantined_rows"] == 2
    assert stuck["sessions"].title.startswith("Ingestion of sessions stuck: no row loaded for")
    assert stuck["sessions"].title.endswith("while 2 newer rows were quarantined")

    # A valid row moves the watermark past the bad ones: the condition clears.
    insert_sessions(source_url, [make_session(6, now, updated_at=now - timedelta(seconds=5))])
    _ingest(warehouse_url, source_url, "r3")
    assert _stuck(warehouse_url) == {}


def test_bad_rows_for_less_than_stuck_minutes_do_not_fire(
    warehouse_url: str, source_url: str
) -> None:
    now = datetime.now(UTC)
    insert_sessions(source_url, [make_session(1, now, updated_at=now - timedelta(minutes=10))])
    _ingest(warehouse_url, source_url, "r1")
    insert_sessions(
        source_url, [make_session(2, now, updated_at=now - timedelta(minutes=1), rating=0)]
    )
    _ingest(warehouse_url, source_url, "r2")
    assert _stuck(warehouse_url) == {}  # nothing loadable for 10 min only (rule: 30)


def test_an_old_bad_row_among_valid_ones_is_not_a_stall(
    warehouse_url: str, source_url: str
) -> None:
    now = datetime.now(UTC)
    two_hours_ago = now - timedelta(hours=2)
    insert_sessions(
        source_url,
        [make_session(i, now, updated_at=two_hours_ago - timedelta(minutes=i)) for i in (1, 2)]
        + [make_session(3, now, updated_at=two_hours_ago - timedelta(minutes=3), rating=9)],
    )
    _ingest(warehouse_url, source_url, "r1")
    assert _stuck(warehouse_url) == {}

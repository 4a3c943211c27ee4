"""Incremental ingestion against real PostgreSQL: idempotence, quarantine, atomic watermarks."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from orchestration.lib.ingest.loader import ingest_table, source_fetcher
from orchestration.lib.ingest.tables import BY_NAME

pytestmark = pytest.mark.integration

SESSIONS = BY_NAME["sessions"]


def insert_sessions(url: str, rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            f"insert into tutoring_sessions ({', '.join(cols)}) values "
            f"({', '.join(['%s'] * len(cols))})",
            [tuple(r[c] for c in cols) for r in rows],
        )


def make_session(i: int, now: datetime, **over: Any) -> dict[str, Any]:
    row = {
        "id": i,
        "customer_id": 100 + i % 7,
        "tutor_id": 200 + i % 3,
        "subject_id": 1,
        "session_request_id": i,
        "scheduled_at": now - timedelta(days=i % 20),
        "duration_minutes": 60,
        "status": "completed",
        "cancelled_by": None,
        "no_show_by": None,
        "rating": 1 + i % 5,
        "is_first_session": i % 10 == 0,
        "created_at": now - timedelta(days=30, minutes=i),
        "updated_at": now - timedelta(hours=1, minutes=i),
    }
    row.update(over)
    return row


def snapshot(url: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"select * from raw.{table} order by 1, 2").fetchall()


def watermark(url: str, table: str) -> datetime | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select watermark from raw.watermarks where table_name = %s", (table,)
        ).fetchone()
    return row[0] if row else None


def db_now(url: str) -> datetime:
    with psycopg.connect(url) as conn:
        return conn.execute("select now()").fetchone()[0]


def test_same_window_twice_leaves_identical_tables(warehouse_url: str, source_url: str) -> None:
    now = db_now(source_url)
    insert_sessions(source_url, [make_session(i, now) for i in range(1, 301)])
    fetch = source_fetcher(source_url, SESSIONS, batch_size=64)

    first = ingest_table(warehouse_url, SESSIONS, fetch)
    assert (first.rows_read, first.rows_upserted, first.rows_quarantined) == (300, 300, 0)
    before = snapshot(warehouse_url, "sessions")

    # Re-run the same window from scratch: rewind the watermark, load again.
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "update raw.watermarks set watermark = '1970-01-01' where table_name = 'sessions'"
        )
    again = ingest_table(warehouse_url, SESSIONS, fetch)
    assert again.rows_read == 300
    assert again.rows_upserted == 0
    assert snapshot(warehouse_url, "sessions") == before

    # And an ordinary next cycle with nothing new changes nothing either.
    ingest_table(warehouse_url, SESSIONS, fetch)
    assert snapshot(warehouse_url, "sessions") == before


def test_updates_in_the_source_replace_the_raw_row(warehouse_url: str, source_url: str) -> None:
    now = db_now(source_url)
    insert_sessions(source_url, [make_session(1, now, status="scheduled", rating=None)])
    fetch = source_fetcher(source_url, SESSIONS)
    ingest_table(warehouse_url, SESSIONS, fetch)
    with psycopg.connect(source_url) as conn:
        conn.execute(
            "update tutoring_sessions set status = 'completed', rating = 4, updated_at = now()"
        )
    report = ingest_table(warehouse_url, SESSIONS, fetch)
    assert report.rows_upserted == 1
    rows = snapshot(warehouse_url, "sessions")
    assert len(rows) == 1
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("select status, rating from raw.sessions").fetchone() == (
            "completed",
            4,
        )


def test_bad_rows_are_quarantined_and_valid_rows_all_land(
    warehouse_url: str, source_url: str
) -> None:
    now = db_now(source_url)
    future = now + timedelta(days=1)
    good = [make_session(i, now) for i in range(1, 51)]
    bad = [
        make_session(101, now, rating=7),
        make_session(102, now, customer_id=None),
        make_session(103, now, created_at=future, updated_at=future),
        make_session(104, now, status="exploded"),
    ]
    insert_sessions(source_url, good + bad)
    fetch = source_fetcher(source_url, SESSIONS)

    report = ingest_table(warehouse_url, SESSIONS, fetch, run_id="run-1")
    assert (report.rows_upserted, report.rows_quarantined) == (50, 4)
    with psycopg.connect(warehouse_url) as conn:
        ids = [r[0] for r in conn.execute("select id from raw.sessions order by id")]
        quarantined = dict(
            conn.execute(
                "select source_key, reason from raw.quarantine where table_name = 'sessions'"
            )
        )
        payload = conn.execute(
            "select payload->>'rating' from raw.quarantine where source_key = '101'"
        ).fetchone()[0]
    assert ids == list(range(1, 51))
    assert set(quarantined) == {"101", "102", "103", "104"}
    assert "rating" in quarantined["101"]
    assert "customer_id" in quarantined["102"]
    assert "future" in quarantined["103"]
    assert payload == "7"
    # The future-dated row never pushes the watermark past the cycle start.
    assert watermark(warehouse_url, "sessions") <= db_now(warehouse_url)

    # Re-running does not duplicate quarantine entries.
    ingest_table(warehouse_url, SESSIONS, fetch, run_id="run-2")
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("select count(*) from raw.quarantine").fetchone()[0] == 4


def test_failed_load_leaves_watermark_and_tables_untouched(
    warehouse_url: str, source_url: str
) -> None:
    now = db_now(source_url)
    insert_sessions(source_url, [make_session(i, now) for i in range(1, 11)])
    ingest_table(warehouse_url, SESSIONS, source_fetcher(source_url, SESSIONS))
    wm_before = watermark(warehouse_url, "sessions")
    rows_before = snapshot(warehouse_url, "sessions")

    insert_sessions(source_url, [make_session(i, now, updated_at=now) for i in range(11, 21)])
    real = source_fetcher(source_url, SESSIONS, batch_size=5)

    def failing(since: datetime) -> Iterator[list[dict[str, Any]]]:
        batches = iter(real(since))
        yield next(batches)
        raise ConnectionError("source went away mid-load")

    with pytest.raises(ConnectionError):
        ingest_table(warehouse_url, SESSIONS, failing)
    assert watermark(warehouse_url, "sessions") == wm_before
    assert snapshot(warehouse_url, "sessions") == rows_before

    # The next healthy cycle picks everything up.
    report = ingest_table(warehouse_url, SESSIONS, real)
    assert report.rows_upserted == 10
    assert watermark(warehouse_url, "sessions") > wm_before

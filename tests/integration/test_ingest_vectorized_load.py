"""The vectorized load against real PostgreSQL: text survives the Arrow/CSV round trip exactly
(empty string is not NULL, quotes, commas, newlines), a first load rebuilds every index it
deferred (or, if it fails, leaves them as they were), a key sent twice keeps its newest row, even across two batches of a first load."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from orchestration.lib.ingest.loader import ingest_table, source_fetcher
from orchestration.lib.ingest.tables import BY_NAME
from tests.integration.test_ingestion import db_now, insert_sessions, make_session

pytestmark = pytest.mark.integration

SESSIONS = BY_NAME["sessions"]
CUSTOMERS = BY_NAME["customers"]


def indexes(url: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "select indexdef from pg_indexes where schemaname = 'raw' and tablename = %s"
                " order by indexname",
                (table,),
            )
        ]


def test_text_survives_the_round_trip(warehouse_url: str, source_url: str) -> None:
    now = db_now(source_url)
    names = ["", None, 'O\'Brien, "Ned"', "two\nlines", "ünï ✓", "\\N"]
    with psycopg.connect(source_url) as conn:
        for i, name in enumerate(names, start=1):
            conn.execute(
                "insert into customers (id, email, full_name, status, created_at, updated_at)"
                " values (%s, %s, %s, 'active', %s, %s)",
                (i, name, name, now - timedelta(days=1), now - timedelta(hours=1)),
            )
    report = ingest_table(warehouse_url, CUSTOMERS, source_fetcher(source_url, CUSTOMERS))
    assert report.rows_upserted == len(names)
    with psycopg.connect(warehouse_url) as conn:
        loaded = conn.execute("select email, full_name from raw.customers order by id").fetchall()
    assert loaded == [(n, n) for n in names]


def test_first_load_rebuilds_every_index_and_a_failed_one_keeps_them(
    warehouse_url: str, source_url: str
) -> None:
    declared = indexes(warehouse_url, "sessions")
    now = db_now(source_url)
    insert_sessions(source_url, [make_session(i, now) for i in range(1, 41)])
    real = source_fetcher(source_url, SESSIONS)

    def failing(since: datetime) -> Iterator[Any]:
        yield from real(since)
        raise ConnectionError("source went away before the commit")

    with pytest.raises(ConnectionError):
        ingest_table(warehouse_url, SESSIONS, failing)
    assert indexes(warehouse_url, "sessions") == declared

    report = ingest_table(warehouse_url, SESSIONS, real)
    assert report.rows_upserted == 40
    assert indexes(warehouse_url, "sessions") == declared


def test_a_key_sent_twice_keeps_its_newest_row(warehouse_url: str) -> None:
    stamp = datetime.fromisoformat("2026-11-20T10:00:00+00:00")
    call = {
        "id": 7,
        "customer_id": 3,
        "reason_code": "billing",
        "channel": "phone",
        "duration_seconds": "60",  # pydantic coerces this one: the row still loads
        "resolved": True,
        "called_at": stamp.isoformat(),
        "created_at": stamp.isoformat(),
        "updated_at": (stamp + timedelta(minutes=1)).isoformat(),
    }
    newer = {**call, "channel": "chat", "updated_at": (stamp + timedelta(minutes=5)).isoformat()}

    def pages(_since: datetime) -> Iterator[list[dict[str, Any]]]:
        yield [newer]
        yield [call]

    report = ingest_table(warehouse_url, BY_NAME["inbound_calls"], pages)
    assert (report.rows_read, report.rows_upserted, report.rows_quarantined) == (2, 1, 0)
    with psycopg.connect(warehouse_url) as conn:
        row = conn.execute("select channel, duration_seconds from raw.inbound_calls").fetchone()
    assert row == ("chat", 60)


def test_a_first_load_that_meets_a_key_twice_in_two_batches_keeps_its_newest_row(
    warehouse_url: str,
) -> None:
    """A first load appends without its primary key (built at the end): an API that sends a key
    again in a later batch must still end with one row, the newest, and the key in place."""
    stamp = datetime.fromisoformat("2026-11-20T10:00:00+00:00")

    def call(i: int, channel: str, minutes: int) -> dict[str, Any]:
        return {
            "id": i,
            "customer_id": 3,
            "reason_code": "billing",
            "channel": channel,
            "duration_seconds": 60,
            "resolved": True,
            "called_at": stamp.isoformat(),
            "created_at": stamp.isoformat(),
            "updated_at": (stamp + timedelta(minutes=minutes)).isoformat(),
        }

    first_batch = [call(i, "chat" if i == 7 else "phone", 5) for i in range(1, 20_001)]

    def pages(_since: datetime) -> Iterator[list[dict[str, Any]]]:
        yield first_batch  # 20,000 rows: one batch of its own
        yield [call(7, "phone", 1)]  # the same key again, older

    declared = indexes(warehouse_url, "inbound_calls")
    report = ingest_table(warehouse_url, BY_NAME["inbound_calls"], pages)
    assert (report.rows_read, report.rows_upserted) == (20_001, 20_000)
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute("select channel from raw.inbound_calls where id = 7").fetchall()
        total = conn.execute("select count(*) from raw.inbound_calls").fetchone()
    assert rows == [("chat",)]
    assert total == (20_000,)
    assert indexes(warehouse_url, "inbound_calls") == declared

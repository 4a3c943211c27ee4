"""One code path that decides the time-series layout: TimescaleDB when available, else plain."""

from __future__ import annotations

import psycopg

TIME_SERIES_TABLES = (("raw", "sessions"), ("raw", "inbound_calls"))


def timescale_available(conn: psycopg.Connection) -> bool:
    """The extension must be installed AND preloaded by the server to be usable."""
    row = conn.execute(
        "select exists (select 1 from pg_available_extensions where name = 'timescaledb'),"
        " coalesce(current_setting('shared_preload_libraries', true), '') like '%timescaledb%'"
    ).fetchone()
    return bool(row and row[0] and row[1])


def apply_time_series_layout(conn: psycopg.Connection) -> str:
    """Turn the raw time-series tables into hypertables when TimescaleDB is there.

    Idempotent: `if_not_exists` on the hypertable call; the plain path needs nothing because the
    tables are already indexed on their time column.
    """
    if not timescale_available(conn):
        return "plain PostgreSQL"
    conn.execute("create extension if not exists timescaledb")
    for schema, table in TIME_SERIES_TABLES:
        conn.execute(
            "select create_hypertable(%s::regclass, 'created_at', if_not_exists => true,"
            " migrate_data => true)",
            (f"{schema}.{table}",),
        )
    return "TimescaleDB hypertables"

"""TimescaleDB from Python: detection, the extension's statements, and the one seam that runs them.

Every statement that needs the extension is built by a function here (tests assert its exact
text and arguments) and runs only through `TimescaleCalls`. That object is the single seam
tests replace to drive the TimescaleDB code paths end to end on plain PostgreSQL; everything
else those paths execute is plain SQL and runs against the test database unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg

TIME_SERIES_TABLES = (("raw", "sessions"), ("raw", "inbound_calls"))

# Usable = the server ships the extension AND preloads it (TimescaleDB refuses to load otherwise).
AVAILABLE_SQL = (
    "select exists (select 1 from pg_available_extensions where name = 'timescaledb'),"
    " coalesce(current_setting('shared_preload_libraries', true), '') like '%timescaledb%'"
)
# Installed in this database (what dbt's `timescaledb_enabled()` asks too).
INSTALLED_SQL = "select exists (select 1 from pg_extension where extname = 'timescaledb')"


@dataclass(frozen=True)
class Statement:
    """One SQL statement and its parameters. No parameters means psycopg sends the text as is,
    so `%` is written once; with parameters it must be doubled (finding 1 of issue 8)."""

    sql: str
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RefreshWindow:
    """Refresh [now - back, now + ahead] of a continuous aggregate."""

    back: timedelta
    ahead: timedelta


def create_extension() -> Statement:
    return Statement("create extension if not exists timescaledb")


def create_hypertable(table: str, time_column: str) -> Statement:
    """`migrate_data`: the raw tables already hold rows when a plain deployment switches."""
    return Statement(
        "select create_hypertable(%(table)s::regclass, %(time_column)s::name,"
        " if_not_exists => true, migrate_data => true)",
        {"table": table, "time_column": time_column},
    )


def list_continuous_aggregates() -> Statement:
    """Qualified names of the continuous aggregates in `marts`, ready for `::regclass`.
    Sent without parameters, so each `%` is written once."""
    return Statement(
        "select format('%I.%I', view_schema, view_name)"
        " from timescaledb_information.continuous_aggregates"
        " where view_schema = 'marts' order by view_name"
    )


def refresh_continuous_aggregate(view: str, window: RefreshWindow | None) -> Statement:
    """`window` None refreshes the whole range (null, null): the history of a new aggregate."""
    if window is None:
        return Statement(
            "call refresh_continuous_aggregate(%(view)s::regclass, null, null)", {"view": view}
        )
    return Statement(
        "call refresh_continuous_aggregate(%(view)s::regclass,"
        " now() - %(back)s::interval, now() + %(ahead)s::interval)",
        {"view": view, "back": window.back, "ahead": window.ahead},
    )


class TimescaleCalls:
    """The extension calls opsdash makes from Python, on one connection. The TimescaleDB code
    paths call nothing of the extension except through this object."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def _run(self, statement: Statement) -> list[tuple[object, ...]]:
        cur = self.conn.execute(statement.sql, statement.params or None)
        return cur.fetchall() if cur.description else []

    def create_extension(self) -> None:
        self._run(create_extension())

    def create_hypertable(self, table: str, time_column: str) -> None:
        self._run(create_hypertable(table, time_column))

    def continuous_aggregates(self) -> list[str]:
        return [str(name) for (name,) in self._run(list_continuous_aggregates())]

    def refresh_continuous_aggregate(self, view: str, window: RefreshWindow | None) -> None:
        self._run(refresh_continuous_aggregate(view, window))


def timescale_available(conn: psycopg.Connection) -> bool:
    """The extension must be installed AND preloaded by the server to be usable."""
    row = conn.execute(AVAILABLE_SQL).fetchone()
    return bool(row and row[0] and row[1])


def timescale_installed(conn: psycopg.Connection) -> bool:
    row = conn.execute(INSTALLED_SQL).fetchone()
    return bool(row and row[0])


def apply_time_series_layout(
    conn: psycopg.Connection,
    *,
    calls: TimescaleCalls | None = None,
    timescale: bool | None = None,
) -> str:
    """Turn the raw time-series tables into hypertables when TimescaleDB is usable.

    Idempotent: `if_not_exists` on the hypertable call; the plain path needs nothing because the
    tables are already indexed on their time column. `timescale` overrides detection and
    `calls` the extension (tests run this path on plain PostgreSQL with both).
    """
    if not (timescale_available(conn) if timescale is None else timescale):
        return "plain PostgreSQL"
    calls = calls or TimescaleCalls(conn)
    calls.create_extension()
    for schema, table in TIME_SERIES_TABLES:
        calls.create_hypertable(f"{schema}.{table}", "created_at")
    return "TimescaleDB hypertables"

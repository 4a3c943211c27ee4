"""The Python side of the TimescaleDB path on the test PostgreSQL, which has no TimescaleDB:

- the real `TimescaleCalls` runs every extension statement against stand-ins with the
  extension's names and signatures (functions, a procedure, its information view) created in
  a scratch database, so the SQL text, named arguments, casts and parameter binding are the
  server's to judge (a doubled `%%` in the listing query shows up as '%I.%I');
- the code paths taken when the extension is detected run end to end with detection forced
  on and only `TimescaleCalls` replaced; every other statement they run is real.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import psycopg
import pytest

from opsdash_core.rollups import refresh_continuous_aggregates
from opsdash_core.timescale import RefreshWindow, TimescaleCalls, apply_time_series_layout

pytestmark = pytest.mark.integration

# Stand-ins for what TimescaleDB 2.x provides, with its parameter names and types; each
# records its call. The real functions take more (defaulted) parameters.
STUB_EXTENSION_SQL = """
create schema timescaledb_stub;
create table timescaledb_stub.calls (id serial primary key, call text not null);
create function timescaledb_stub.record(call text) returns integer
language sql as $$ insert into timescaledb_stub.calls (call) values (call) returning 1 $$;
create function timescaledb_stub.create_hypertable(
    relation regclass, time_column_name name, chunk_time_interval interval default null,
    if_not_exists boolean default false, migrate_data boolean default false
) returns table (hypertable_id integer, schema_name name, table_name name, created boolean)
language sql as $$
    select timescaledb_stub.record(format(
        'create_hypertable(%s, %s, chunk_time_interval => %s, if_not_exists => %s,'
        ' migrate_data => %s)', relation, time_column_name,
        coalesce(chunk_time_interval::text, 'default'), if_not_exists, migrate_data));
    select 1, 'stub'::name, 'stub'::name, true;
$$;
create function timescaledb_stub.add_compression_policy(
    hypertable regclass, compress_after interval default null,
    if_not_exists boolean default false
) returns integer language sql as $$
    select timescaledb_stub.record(format(
        'add_compression_policy(%s, compress_after => %s, if_not_exists => %s)',
        hypertable, compress_after, if_not_exists));
$$;
create function timescaledb_stub.add_retention_policy(
    relation regclass, drop_after interval default null, if_not_exists boolean default false
) returns integer language sql as $$
    select timescaledb_stub.record(format(
        'add_retention_policy(%s, drop_after => %s, if_not_exists => %s)',
        relation, drop_after, if_not_exists));
$$;
create procedure timescaledb_stub.refresh_continuous_aggregate(
    continuous_aggregate regclass, window_start timestamptz, window_end timestamptz
) language sql as $$
    select timescaledb_stub.record(format(
        'refresh_continuous_aggregate(%s, %s, %s)', continuous_aggregate,
        coalesce(round(extract(epoch from window_start - now()) / 86400)::text, 'null'),
        coalesce(round(extract(epoch from window_end - now()) / 86400)::text, 'null')));
$$;
create schema timescaledb_information;
create table timescaledb_information.continuous_aggregates (view_schema name, view_name name);
create table timescaledb_information.hypertables (
    hypertable_schema name, hypertable_name name, compression_enabled boolean
);
"""


def stub_database(scratch_db: Callable[[str], str]) -> str:
    """A scratch database where TimescaleDB's functions and information views exist as
    recording stand-ins (`recorded()` lists the calls)."""
    url = scratch_db("tsstub")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(STUB_EXTENSION_SQL)
        # Unqualified calls find the stand-ins, as they find the extension's functions.
        dbname = url.rsplit("/", 1)[1]
        conn.execute(f'alter database "{dbname}" set search_path = public, timescaledb_stub')
    return url


def recorded(conn: psycopg.Connection) -> list[str]:
    return [c for (c,) in conn.execute("select call from timescaledb_stub.calls order by id")]


def test_every_extension_statement_runs_as_written(scratch_db: Callable[[str], str]) -> None:
    url = stub_database(scratch_db)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            create schema raw;
            create table raw.sessions (created_at timestamptz);
            create schema marts;
            create view marts."Supply by day" as select 1 as n;
            create view marts.supply_demand_daily as select 1 as n;
            create view marts.unrelated as select 1 as n;
            insert into timescaledb_information.continuous_aggregates values
                ('marts', 'supply_demand_daily'), ('marts', 'Supply by day'), ('other', 'x');
            """
        )
        calls = TimescaleCalls(conn)

        views = calls.continuous_aggregates()
        assert views == ['marts."Supply by day"', "marts.supply_demand_daily"]

        calls.create_hypertable("raw.sessions", "created_at")
        calls.refresh_continuous_aggregate(views[1], None)
        calls.refresh_continuous_aggregate(
            views[0], RefreshWindow(back=timedelta(days=3), ahead=timedelta(days=8))
        )
        assert recorded(conn) == [
            "create_hypertable(raw.sessions, created_at, chunk_time_interval => default,"
            " if_not_exists => t, migrate_data => t)",
            "refresh_continuous_aggregate(marts.supply_demand_daily, null, null)",
            'refresh_continuous_aggregate(marts."Supply by day", -3, 8)',
        ]

        # The one statement no stand-in can answer: the server looks for the extension.
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="timescaledb"):
            calls.create_extension()


class RecordingCalls(TimescaleCalls):
    """The seam replaced: records the extension calls, answers the listing with `views`."""

    def __init__(self, conn: psycopg.Connection, views: list[str] | None = None) -> None:
        super().__init__(conn)
        self.views = views or []
        self.made: list[tuple[object, ...]] = []

    def create_extension(self) -> None:
        self.made.append(("create_extension",))

    def create_hypertable(self, table: str, time_column: str) -> None:
        self.made.append(("create_hypertable", table, time_column))

    def continuous_aggregates(self) -> list[str]:
        self.made.append(("continuous_aggregates",))
        return self.views

    def refresh_continuous_aggregate(self, view: str, window: RefreshWindow | None) -> None:
        self.made.append(("refresh", view, window))


def test_detected_layout_turns_the_raw_tables_into_hypertables(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        assert apply_time_series_layout(conn) == "plain PostgreSQL"
        calls = RecordingCalls(conn)
        assert apply_time_series_layout(conn, calls=calls, timescale=True) == (
            "TimescaleDB hypertables"
        )
    assert calls.made == [
        ("create_extension",),
        ("create_hypertable", "raw.sessions", "created_at"),
        ("create_hypertable", "raw.inbound_calls", "created_at"),
    ]


def _comment(conn: psycopg.Connection, view: str) -> str:
    row = conn.execute("select obj_description(%s::regclass, 'pg_class')", (view,)).fetchone()
    return str(row[0]) if row else ""


def test_detected_refresh_materializes_new_history_once(scratch_db: Callable[[str], str]) -> None:
    """A (re)created aggregate - its comment marked by the rollup materialization - is
    refreshed over its whole range once, then only over the recent window."""
    url = scratch_db("tsrefresh")
    new, old = "marts.supply_demand_daily", 'marts."Supply by category"'
    window = RefreshWindow(back=timedelta(days=3), ahead=timedelta(days=8))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema marts")
        for view in (new, old):
            conn.execute(f"create view {view} as select 1 as n")
        conn.execute(
            f"comment on view {new} is"
            " 'opsdash rollup, fingerprint abc, history pending, refreshed 2026-11-30T10:00:00'"
        )
        conn.execute(
            f"comment on view {old} is 'opsdash rollup, fingerprint def, refreshed 2026-11-30'"
        )
        assert refresh_continuous_aggregates(conn) == []  # not detected: nothing to do

        calls = RecordingCalls(conn, views=[old, new])
        assert refresh_continuous_aggregates(conn, calls=calls, timescale=True) == [old, new]
        assert calls.made == [
            ("continuous_aggregates",),
            ("refresh", old, window),
            ("refresh", new, None),
        ]
        assert _comment(conn, new) == (
            "opsdash rollup, fingerprint abc, refreshed 2026-11-30T10:00:00"
        )
        assert _comment(conn, old) == "opsdash rollup, fingerprint def, refreshed 2026-11-30"

        again = RecordingCalls(conn, views=[old, new])
        refresh_continuous_aggregates(
            conn, timedelta(hours=1), timedelta(0), calls=again, timescale=True
        )
        short = RefreshWindow(back=timedelta(hours=1), ahead=timedelta(0))
        assert again.made[1:] == [("refresh", old, short), ("refresh", new, short)]

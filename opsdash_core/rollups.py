"""Refresh of the TimescaleDB continuous aggregates that dbt's `rollup` models create.

`refresh_continuous_aggregate` cannot run inside a transaction, so dbt creates each aggregate
`WITH NO DATA` and this step, run right after every dbt build on an autocommit connection,
materializes it:
- an aggregate dbt (re)created - first build, changed SQL, `--full-refresh`, or a rebuilt
  source - carries "history pending" in its comment (set in the same transaction that created
  it); it is refreshed over its whole range once, then the mark is removed. Without this only
  the refresh policy's window (45 days) would ever be materialized;
- every other aggregate is refreshed over the recent window, so the marts are exact at once
  (the policy would get there within its schedule).
Without TimescaleDB the rollups are materialized views that dbt already refreshed: a no-op.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
from psycopg import sql

from opsdash_core.timescale import RefreshWindow, TimescaleCalls, timescale_installed

# Written by dbt_project/macros/materializations/rollup.sql (rollup_comment_sql).
HISTORY_PENDING = "history pending, "

VIEW_COMMENT_SQL = """
select n.nspname, c.relname, coalesce(obj_description(c.oid, 'pg_class'), '')
from pg_class as c
join pg_namespace as n on n.oid = c.relnamespace
where c.oid = %(view)s::regclass
"""


def _history_pending(conn: psycopg.Connection, view: str) -> tuple[sql.Composable, str] | None:
    """The view's identifier and comment without the mark, if the mark is there."""
    row = conn.execute(VIEW_COMMENT_SQL, {"view": view}).fetchone()
    if row is None or HISTORY_PENDING not in row[2]:
        return None
    return sql.Identifier(row[0], row[1]), row[2].replace(HISTORY_PENDING, "")


def refresh_continuous_aggregates(
    conn: psycopg.Connection,
    back: timedelta = timedelta(days=3),
    ahead: timedelta = timedelta(days=8),
    *,
    calls: TimescaleCalls | None = None,
    timescale: bool | None = None,
) -> list[str]:
    """Refresh every continuous aggregate in `marts`: the whole range where its history is
    pending, else [now - back, now + ahead] (hours ahead too: supply_demand_hourly carries the
    7-day outlook). Returns the names refreshed (none on plain PostgreSQL). `conn` must be in
    autocommit mode. `timescale` overrides detection and `calls` the extension (tests)."""
    if not (timescale_installed(conn) if timescale is None else timescale):
        return []
    calls = calls or TimescaleCalls(conn)
    views = calls.continuous_aggregates()
    for view in views:
        pending = _history_pending(conn, view)
        if pending is None:
            calls.refresh_continuous_aggregate(view, RefreshWindow(back, ahead))
            continue
        calls.refresh_continuous_aggregate(view, None)
        ident, comment = pending
        conn.execute(sql.SQL("comment on view {} is {}").format(ident, sql.Literal(comment)))
    return views

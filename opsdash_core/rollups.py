"""Refresh of the TimescaleDB continuous aggregates that dbt's `rollup` models create.

TimescaleDB refreshes them on its own schedule (the policy the model adds) and serves rows
newer than the last refresh in real time; this step, run right after each dbt build, makes the
recent window exact at once. `refresh_continuous_aggregate` cannot run inside a transaction,
which is why dbt cannot do it itself. Without TimescaleDB the rollups are materialized views
that dbt already refreshed, and this is a no-op.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg

HAS_TIMESCALEDB_SQL = "select exists (select 1 from pg_extension where extname = 'timescaledb')"

# Executed without parameters, so `%` is written once: psycopg only unescapes `%%` when it
# binds parameters.
CONTINUOUS_AGGREGATES_SQL = """
select format('%I.%I', view_schema, view_name)
from timescaledb_information.continuous_aggregates
where view_schema = 'marts'
order by view_name
"""

# Hours ahead are refreshed too: supply_demand_hourly carries the 7-day outlook.
REFRESH_SQL = (
    "call refresh_continuous_aggregate(%(view)s::regclass, now() - %(back)s, now() + %(ahead)s)"
)


def refresh_continuous_aggregates(
    conn: psycopg.Connection,
    back: timedelta = timedelta(days=3),
    ahead: timedelta = timedelta(days=8),
) -> list[str]:
    """Refresh every continuous aggregate in `marts` over [now - back, now + ahead]; returns
    the names refreshed (none on plain PostgreSQL). `conn` must be in autocommit mode."""
    row = conn.execute(HAS_TIMESCALEDB_SQL).fetchone()
    if not row or not row[0]:
        return []
    views = [name for (name,) in conn.execute(CONTINUOUS_AGGREGATES_SQL).fetchall()]
    for view in views:
        conn.execute(REFRESH_SQL, {"view": view, "back": back, "ahead": ahead})
    return views

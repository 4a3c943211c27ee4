"""Generate: simulate a marketplace history and write it into the source database.

The pieces live in their own modules (`history` simulates, `pgcopy` encodes, `sourcedb` knows
the schema); their public names are re-exported here for the callers that import them from
this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from simulator.bookings import REQUEST_CANCEL_P, local_start
from simulator.columns import (
    BASE_REASON_P,
    CHANNELS,
    DURATIONS,
    FIRST_NAMES,
    LAST_NAMES,
    REASONS,
    SUPPORT_REASON_P,
    UNSET,
    Cat,
    names,
)
from simulator.history import History, draw_signups, latent_columns, simulate
from simulator.history_tables import PARTIES
from simulator.matching import SHIFTS, match
from simulator.pgcopy import (
    CHUNK,
    COPY_HEADER,
    FIXED,
    PG_EPOCH,
    column_types,
    copy_table,
    encode_rows,
    ident,
)
from simulator.sourcedb import (
    SCHEMA_FILE,
    SOURCE_TABLES,
    TRUTH_TABLES,
    has_data,
    scratch_database,
    secondary_indexes,
    with_dbname,
)

__all__ = [
    "BASE_REASON_P",
    "CHANNELS",
    "CHUNK",
    "COPY_HEADER",
    "DURATIONS",
    "FIRST_NAMES",
    "FIXED",
    "LAST_NAMES",
    "PARTIES",
    "PG_EPOCH",
    "REASONS",
    "REQUEST_CANCEL_P",
    "SCHEMA_FILE",
    "SHIFTS",
    "SOURCE_TABLES",
    "SUPPORT_REASON_P",
    "TRUTH_TABLES",
    "UNSET",
    "Cat",
    "History",
    "column_types",
    "copy_table",
    "draw_signups",
    "encode_rows",
    "generate",
    "has_data",
    "ident",
    "latent_columns",
    "local_start",
    "match",
    "names",
    "scratch_database",
    "secondary_indexes",
    "simulate",
    "utc_minute",
    "with_dbname",
    "write",
]


def utc_minute(now: float | None = None) -> int:
    return int(now if now is not None else time.time()) // 60 * 60


def write(url: str, hist: History, echo: Callable[[str], None] = print) -> int:
    """Replace the database's contents with `hist` in one transaction; returns rows written."""
    total, started = 0, time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute(SCHEMA_FILE.read_text())
        conn.execute(
            sql.SQL("truncate {} restart identity").format(
                sql.SQL(", ").join(ident(t) for t in SOURCE_TABLES + TRUTH_TABLES)
            )
        )
        conn.execute("set local maintenance_work_mem = '256MB'")
        for index in secondary_indexes():
            conn.execute(sql.SQL("drop index if exists {}").format(ident(index)))
        for table, cols in hist.tables.items():
            t = time.perf_counter()
            n = copy_table(conn, table, cols, freeze=True)
            dt = max(time.perf_counter() - t, 1e-6)
            total += n
            echo(f"  {table:<28} {n:>10,} rows {dt:7.2f}s {n / dt:>12,.0f} rows/s")
        t = time.perf_counter()
        conn.execute(SCHEMA_FILE.read_text())  # recreates the dropped indexes
        echo(f"  indexes rebuilt in {time.perf_counter() - t:.2f}s")
        for table in (*SOURCE_TABLES, "truth.scenarios", "truth.generation"):
            conn.execute(
                sql.SQL(
                    "select setval(pg_get_serial_sequence(%s, 'id'), "
                    "coalesce((select max(id) from {}), 0) + 1, false)"
                ).format(ident(table)),
                (table,),
            )
        conn.execute(
            "insert into truth.generation (seed, scale, days, history_end, rate_scale) "
            "values (%s, %s, %s, %s, %s)",
            (
                hist.seed,
                hist.scale,
                hist.days,
                datetime.fromtimestamp(hist.history_end, UTC),
                hist.rate_scale,
            ),
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("analyze")
    dt = time.perf_counter() - started
    echo(f"  wrote {total:,} rows in {dt:.1f}s ({total / dt:,.0f} rows/s)")
    return total


def generate(
    url: str,
    *,
    scale: int,
    days: int,
    seed: int,
    replace: bool = False,
    history_end: int | None = None,
    echo: Callable[[str], None] = print,
) -> History | None:
    """Simulate and write a marketplace history; None when data exists and `replace` is off."""
    with psycopg.connect(url) as conn:
        if has_data(conn) and not replace:
            echo(
                "the source database already holds marketplace data: nothing written "
                "(use --replace to regenerate)"
            )
            return None
    end = history_end if history_end is not None else utc_minute()
    t = time.perf_counter()
    hist = simulate(seed, scale, days, end)
    echo(
        f"simulated {scale:,} customers x {days} days (seed {seed}, history ends "
        f"{datetime.fromtimestamp(end, UTC).isoformat()}) in {time.perf_counter() - t:.1f}s"
    )
    write(url, hist, echo)
    return hist

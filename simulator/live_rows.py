"""Reading and writing rows in live mode: result columns, ids, inserts, updates by id, and
timestamps that stay inside the tick."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import psycopg
from psycopg import sql

from opsdash_core.db import first_row
from simulator.columns import Column
from simulator.pgcopy import copy_table, ident


def columns_of(rows: list[tuple], n: int) -> list[np.ndarray]:
    """Query rows as one array per column (`n` empty arrays when there are no rows)."""
    if not rows:
        return [np.zeros(0) for _ in range(n)]
    return [np.array(c) for c in zip(*rows, strict=True)]


def alloc_ids(conn: psycopg.Connection, table: str, n: int) -> np.ndarray:
    rows = conn.execute(
        "select nextval(pg_get_serial_sequence(%s, 'id')) from generate_series(1, %s)", (table, n)
    ).fetchall()
    return np.array([r[0] for r in rows], dtype=np.int64)


def insert_rows(conn: psycopg.Connection, table: str, cols: Mapping[str, Column]) -> int:
    n = len(next(iter(cols.values())))
    if n:
        copy_table(conn, table, cols)
    return n


def update_rows(conn: psycopg.Connection, table: str, cols: Mapping[str, Column]) -> int:
    """Set columns of rows by id; updated_at never goes below created_at."""
    n = len(cols["id"])
    if not n:
        return 0
    names = list(cols)
    tmp = sql.Identifier("_sim_update")
    conn.execute(
        sql.SQL("create temp table {} as select {} from {} limit 0").format(
            tmp, sql.SQL(", ").join(map(sql.Identifier, names)), ident(table)
        )
    )
    copy_table(conn, "_sim_update", cols)
    sets: list[sql.Composable] = [
        sql.SQL("{} = u.{}").format(sql.Identifier(c), sql.Identifier(c))
        for c in names
        if c not in ("id", "updated_at")
    ]
    sets.append(sql.SQL("updated_at = greatest(u.updated_at, t.created_at)"))
    conn.execute(
        sql.SQL("update {} t set {} from {} u where t.id = u.id").format(
            ident(table), sql.SQL(", ").join(sets), tmp
        )
    )
    conn.execute(sql.SQL("drop table {}").format(tmp))
    return n


def stamps(rng: np.random.Generator, n: int, t0: int, t1: int) -> np.ndarray:
    """Sorted timestamps inside the tick (t0, t1]."""
    return np.sort(rng.integers(t0 + 1, t1 + 1, n)) if t1 > t0 else np.full(n, t1)


def watermark(conn: psycopg.Connection, t1: int) -> int:
    """The newest updated_at at or before t1 among the tables live mode writes."""
    best = 0
    for table in ("tutoring_sessions", "session_requests", "customers", "support.inbound_calls"):
        row = conn.execute(
            sql.SQL(
                "select extract(epoch from max(updated_at))::bigint from {} "
                "where updated_at <= to_timestamp(%s)"
            ).format(ident(table)),
            (t1,),
        )
        best = max(best, first_row(row)[0] or 0)
    return best

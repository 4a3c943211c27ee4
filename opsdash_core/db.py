"""Connections to the warehouse and the source database (psycopg 3, pooled per URL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from opsdash_core.settings import get_settings

_pools: dict[str, ConnectionPool] = {}
_lock = threading.Lock()


def pool(url: str, max_size: int = 4) -> ConnectionPool:
    """A process-wide pool for `url`, opened on first use.

    Every connection is checked (a round trip) before it is handed out: after a PostgreSQL
    restart the pooled connections are dead, and without the check each one would fail one
    request of the app before the pool noticed."""
    with _lock:
        if url not in _pools:
            _pools[url] = ConnectionPool(
                url,
                min_size=0,
                max_size=max_size,
                open=True,
                kwargs={"autocommit": False},
                check=ConnectionPool.check_connection,
            )
        return _pools[url]


@contextmanager
def connect(url: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A plain connection; commits on success, rolls back on error."""
    conn = psycopg.connect(url, autocommit=autocommit)
    try:
        yield conn
        if not autocommit:
            conn.commit()
    except BaseException:
        if not autocommit:
            conn.rollback()
        raise
    finally:
        conn.close()


@contextmanager
def warehouse(*, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    with connect(get_settings().warehouse_url, autocommit=autocommit) as conn:
        yield conn


@contextmanager
def source(*, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    with connect(get_settings().source_url, autocommit=autocommit) as conn:
        yield conn


def first_row(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    """The one row a query must return (an aggregate, a `returning` clause)."""
    row = cursor.fetchone()
    if row is None:
        raise LookupError("the query returned no row")
    return tuple(row)


def fetch_all(url: str, sql: str, params: tuple | dict | None = None) -> list[dict]:
    """Run one read query through the pool and return rows as dicts."""
    with pool(url).connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


def close_pools() -> None:
    with _lock:
        for p in _pools.values():
            p.close()
        _pools.clear()

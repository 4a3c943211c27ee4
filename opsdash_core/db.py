"""Connections to the warehouse and the source database (psycopg 3, pooled per URL), and which
PostgreSQL role each service connects as (`service_env`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from opsdash_core.settings import Settings, get_settings

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


# The PostgreSQL roles (migration 0013) whose URLs `.env` holds; the superuser keeps
# WAREHOUSE_URL / SOURCE_URL for migrations, set-up and the operator's CLI.
APP_ROLE = "opsdash_app"
PIPELINE_ROLE = "opsdash_pipeline"
TRANSFORM_ROLE = "opsdash_transform"
SOURCE_READER_ROLE = "opsdash_source_reader"
DAGSTER_ROLE = "opsdash_dagster"
MLFLOW_ROLE = "opsdash_mlflow"

Component = Literal["app", "pipeline", "source_reader"]


def service_env(s: Settings, component: Component) -> dict[str, str]:
    """Environment that makes a service's `get_settings()` connect as its own role.

    Every module reads `warehouse_url` / `source_url`; a service started with these variables
    (which win over `.env`) reaches the databases with its role's rights and nothing more:
    - app (Streamlit): opsdash_app on the warehouse and on Dagster's run storage (read-only),
      the source reader for the source;
    - pipeline (Dagster webserver, daemon, runs; the alert watchdog): opsdash_pipeline (member
      of ingest, transform and ml), dbt switching to opsdash_transform, the source reader;
    - source_reader (the simulated support API): SELECT on the source only."""
    if component == "source_reader":
        return {"SOURCE_URL": s.source_reader_url}
    if component == "pipeline":
        env = {"WAREHOUSE_URL": s.pipeline_database_url, "SOURCE_URL": s.source_reader_url}
        if urlsplit(s.pipeline_database_url).username == PIPELINE_ROLE:
            env["OPSDASH_DBT_ROLE"] = TRANSFORM_ROLE
        return env
    env = {"WAREHOUSE_URL": s.app_database_url, "SOURCE_URL": s.source_reader_url}
    app, dagster = urlsplit(s.app_database_url), urlsplit(s.dagster_pg_url)
    if app.username == APP_ROLE and (app.hostname, app.port) == (dagster.hostname, dagster.port):
        env["DAGSTER_PG_URL"] = urlunsplit(app._replace(path=dagster.path))
    return env

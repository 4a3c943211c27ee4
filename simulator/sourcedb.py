"""The source (marketplace) database: its schema file and tables, and scratch copies of it."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from opsdash_core.db import first_row

SCHEMA_FILE = Path(__file__).with_name("schema.sql")
SOURCE_TABLES = (
    "subjects",
    "tutors",
    "tutor_subjects",
    "tutor_availabilities",
    "customers",
    "session_requests",
    "tutoring_sessions",
    "support.inbound_calls",
)
TRUTH_TABLES = (
    "truth.customer_outcomes",
    "truth.tutor_quality",
    "truth.customer_latent",
    "truth.scenarios",
    "truth.generation",
)


def with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


@contextmanager
def scratch_database(base_url: str, prefix: str) -> Iterator[str]:
    """A throw-away database on the cluster of `base_url` (same credentials), dropped after."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = with_dbname(base_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield with_dbname(base_url, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def has_data(conn: psycopg.Connection) -> bool:
    """Whether the marketplace tables exist and hold rows (then `generate` leaves them alone)."""
    tables = ("customers", "tutoring_sessions")
    for table in tables:
        exists = conn.execute("select to_regclass(%s) is not null", (table,)).fetchone()
        if (
            exists
            and exists[0]
            and first_row(
                conn.execute(
                    sql.SQL("select exists (select 1 from {})").format(sql.Identifier(table))
                )
            )[0]
        ):
            return True
    return False


def secondary_indexes() -> list[str]:
    """Qualified names of the schema's non-key indexes, dropped while COPY runs."""
    found = re.findall(r"create index if not exists (\w+) on ([\w.]+)", SCHEMA_FILE.read_text())
    return [f"{t.split('.')[0] if '.' in t else 'public'}.{name}" for name, t in found]

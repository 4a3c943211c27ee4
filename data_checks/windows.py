"""Which rows a check looks at, shared by both engines (GX in `runner`, SQL in `sql_checks`):
its window, the default "since the previous run", and the outcome of a table that cannot be
read. Apart from `runner` so that the SQL engine never imports the GX path."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from data_checks import result_history
from data_checks.result import ExpectationOutcome
from data_checks.suite_types import (
    Bounds,
    LoadFacts,
    LoadRun,
    NewRows,
    RecentRows,
    Suite,
    ValidationContext,
)

SAMPLE_SIZE = 10


class _FromHistory:
    def __repr__(self) -> str:
        return "FROM_HISTORY"


FROM_HISTORY: Any = _FromHistory()
"""Default `since`: start where the previous run of the same check stopped."""


def resolve_window(
    conn: psycopg.Connection,
    suite: Suite,
    now: datetime,
    since: datetime | _FromHistory | None = FROM_HISTORY,
    facts: LoadFacts | None = None,
) -> Bounds:
    w = suite.window
    if isinstance(w, NewRows):
        start = (
            result_history.last_window_end(conn, suite)
            if isinstance(since, _FromHistory)
            else since
        )
        rel, col = sql.Identifier(*suite.relation), sql.Identifier(w.column)
        until = conn.execute(sql.SQL("select max({}) from {}").format(col, rel)).fetchone()[0]  # type: ignore[index]
        if until is None or (start is not None and until <= start):
            return Bounds(w.column, start, start, rows=0)
        query = sql.SQL("select count(*) from {} where {} <= %s").format(rel, col)
        params: tuple[Any, ...] = (until,)
        if start is not None:
            query += sql.SQL(" and {} > %s").format(col)
            params = (until, start)
        rows = conn.execute(query, params).fetchone()[0]  # type: ignore[index]
        return Bounds(w.column, start, until, rows=rows)
    if isinstance(w, RecentRows):
        start_at = now - w.period
        return Bounds(w.column, start_at.date() if w.as_date else start_at, None)
    if isinstance(w, LoadRun):
        if facts is None:
            return Bounds(rows=0, note="no load to judge")
        return Bounds(
            rows=facts.rows_read, note=f"load {facts.run_id}: {facts.rows_read:,} rows read"
        )
    return Bounds()


def _unreadable(suite: Suite, exc: Exception) -> ExpectationOutcome:
    """A table that cannot be read (missing, renamed column) fails the check; it does not
    crash the run, so the failure is recorded and notified like any other."""
    return ExpectationOutcome(
        "suite",
        f"{suite.relation_name} can be validated",
        None,
        False,
        error=f"{type(exc).__name__}: {exc}".strip(),
    )


@dataclass(frozen=True)
class PreparedSuite:
    """What both engines need before evaluating: the clock, the window and each spec's
    prepared values, or the outcome of a table that could not be read."""

    now: datetime
    ctx: ValidationContext
    empty: bool
    prepared: list[Any]
    outcomes: list[ExpectationOutcome]


def prepare_suite(
    conn: psycopg.Connection,
    suite: Suite,
    since: datetime | _FromHistory | None,
    facts: LoadFacts | None,
) -> PreparedSuite:
    now: datetime = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    try:
        window = resolve_window(conn, suite, now, since, facts)
        ctx = ValidationContext(suite, now, window, facts)
        empty = suite.skip_if_no_new_rows and window.empty
        prepared = [] if empty else [spec.prepare(conn, ctx) for spec in suite.specs]
        return PreparedSuite(now, ctx, empty, prepared, [])
    except psycopg.Error as exc:
        conn.rollback()
        ctx = ValidationContext(suite, now, Bounds(), facts)
        return PreparedSuite(now, ctx, False, [], [_unreadable(suite, exc)])

"""Set-level integrity: what no single row shows, written as GX `UnexpectedRowsExpectation`s
("this query returns no rows") -- unknown foreign keys and duplicate keys.

GX takes such a query as a SQL string with a `{batch}` placeholder and no bind parameters, so
the window bounds are rendered into it as quoted literals by psycopg (`sql.Literal`), never by
string formatting; the same composed query, with `{batch}` replaced by the table, fetches the
sample rows.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from data_checks.expectations import fetch
from data_checks.suite_types import ValidationContext

if TYPE_CHECKING:
    import psycopg

    from data_checks.gx_api import GxApi

BATCH = sql.SQL("{batch}")  # left in place for GX to substitute


def _window_sql(ctx: ValidationContext, alias: str) -> sql.Composable:
    """`and <alias>.<col> > since and <alias>.<col> <= until` for the suite's window."""
    w = ctx.window
    if w.column is None:
        return sql.SQL("")
    col = sql.Identifier(alias, w.column)
    parts = []
    if w.since is not None:
        parts.append(sql.SQL(" and {} > {}").format(col, sql.Literal(w.since)))
    if w.until is not None:
        parts.append(sql.SQL(" and {} <= {}").format(col, sql.Literal(w.until)))
    return sql.Composed(parts)


class _RowsQuery(abc.ABC):
    """Base for expectations written as 'this query returns no rows' (subclasses are frozen
    dataclasses with a `column` field)."""

    column: str | None

    @abc.abstractmethod
    def query(
        self, ctx: ValidationContext, batch: sql.Composable, select: sql.Composable
    ) -> sql.Composed:
        """The rows that break the expectation (none means it holds)."""

    def _select(self, ctx: ValidationContext) -> sql.Composable:
        cols = dict.fromkeys([*ctx.suite.key, *([self.column] if self.column else [])])
        return sql.SQL(", ").join(sql.Identifier("b", c) for c in cols)

    def prepare(self, conn: psycopg.Connection, ctx: ValidationContext) -> dict[str, Any]:
        return {}

    def build(self, gx: GxApi, ctx: ValidationContext, prepared: dict[str, Any]) -> Any:
        text = self.query(ctx, BATCH, self._select(ctx)).as_string(None)
        return gx.expectation("UnexpectedRowsExpectation", unexpected_rows_query=text)

    def sample(
        self, conn: psycopg.Connection, ctx: ValidationContext, result: dict[str, Any], limit: int
    ) -> list[dict[str, Any]]:
        table = sql.Identifier(*ctx.suite.relation)
        query = self.query(ctx, table, sql.SQL("b.*")) + sql.SQL(" limit {}").format(limit)
        return fetch(conn, query)


@dataclass(frozen=True)
class References(_RowsQuery):
    """Every non-null `column` in the window exists in `target`.

    `judged_after_load_of` names a dimension in raw.watermarks: a row newer than that
    dimension's watermark may reference a row that simply has not been loaded yet (dimensions
    load hourly, facts every five minutes), so it is judged only once the dimension caught up.
    Without it, the check is strict.
    """

    column: str
    target: tuple[str, str]
    target_column: str = "id"
    judged_after_load_of: str | None = None
    time_column: str = "created_at"

    @property
    def label(self) -> str:
        lag = " (once loaded)" if self.judged_after_load_of else ""
        return f"{self.column} references {'.'.join(self.target)}.{self.target_column}{lag}"

    def query(
        self, ctx: ValidationContext, batch: sql.Composable, select: sql.Composable
    ) -> sql.Composed:
        lag: sql.Composable = sql.SQL("")
        if self.judged_after_load_of:
            lag = sql.SQL(
                " and {t} <= coalesce((select watermark from raw.watermarks"
                " where table_name = {dim}), '-infinity'::timestamptz)"
            ).format(
                t=sql.Identifier("b", self.time_column), dim=sql.Literal(self.judged_after_load_of)
            )
        return sql.SQL(
            "select {select} from {batch} b left join {target} t on t.{tc} = b.{c}"
            " where b.{c} is not null and t.{tc} is null{window}{lag}"
        ).format(
            select=select,
            batch=batch,
            target=sql.Identifier(*self.target),
            tc=sql.Identifier(self.target_column),
            c=sql.Identifier(self.column),
            window=_window_sql(ctx, "b"),
            lag=lag,
        )


@dataclass(frozen=True)
class Unique(_RowsQuery):
    """No two rows of the window share `columns`.

    Written as one GROUP BY instead of GX's uniqueness expectations, whose offending-row query
    self-joins the window: right after a load the planner's statistics still describe the old
    rows, it expects the window to be empty and picks a nested loop, which took minutes on a
    fully rebuilt 33k-row mart.
    """

    columns: tuple[str, ...]

    @property
    def column(self) -> str | None:  # type: ignore[override]
        return self.columns[0] if len(self.columns) == 1 else None

    @property
    def label(self) -> str:
        if len(self.columns) == 1:
            return f"{self.columns[0]} is unique"
        return f"({', '.join(self.columns)}) is unique"

    def _select(self, ctx: ValidationContext) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier("b", c) for c in self.columns)

    def query(
        self, ctx: ValidationContext, batch: sql.Composable, select: sql.Composable
    ) -> sql.Composed:
        cols = sql.SQL(", ").join(sql.Identifier("b", c) for c in self.columns)
        return sql.SQL(
            # `(select * from {batch}) b`: without a join GX substitutes `(...) AS subselect`
            "select {cols}, count(*) as copies from (select * from {batch}) b where true{window}"
            " group by {cols} having count(*) > 1"
        ).format(cols=cols, batch=batch, window=_window_sql(ctx, "b"))

    def sample(
        self, conn: psycopg.Connection, ctx: ValidationContext, result: dict[str, Any], limit: int
    ) -> list[dict[str, Any]]:
        table = sql.Identifier(*ctx.suite.relation)
        query = self.query(ctx, table, sql.SQL("")) + sql.SQL(" limit {}").format(limit)
        return fetch(conn, query)


def unique(column: str) -> Unique:
    return Unique((column,))


def unique_together(*columns: str) -> Unique:
    return Unique(tuple(columns))


@dataclass(frozen=True)
class UniqueAcrossLoads(_RowsQuery):
    """`column` identifies one row even where the primary key also includes `version_column`
    (raw.sessions is keyed by (id, created_at) for partitioning)."""

    column: str = "id"
    version_column: str = "created_at"

    @property
    def label(self) -> str:
        return f"{self.column} unique across loads (one {self.version_column} per {self.column})"

    def query(
        self, ctx: ValidationContext, batch: sql.Composable, select: sql.Composable
    ) -> sql.Composed:
        if ctx.window.since is None:
            # The window is (nearly) the whole table, a first load: one grouping of the table
            # finds the ids with two versions (2.2 s for 5.6 M sessions here) where the join
            # below would hash every row twice (4.9 s). Same rows either way.
            template = (
                # `(select * from {batch}) b`: see Unique
                "select {select} from (select * from {batch}) b where true{window} and b.{c} in"
                " (select o.{c} from {rel} o group by o.{c} having min(o.{v}) <> max(o.{v}))"
            )
        else:
            # A batch of new rows: each looks its id up in the primary key's index.
            template = (
                "select {select} from {batch} b join {rel} o on o.{c} = b.{c} and o.{v} <> b.{v}"
                " where true{window}"
            )
        return sql.SQL(template).format(
            select=select,
            batch=batch,
            rel=sql.Identifier(*ctx.suite.relation),
            c=sql.Identifier(self.column),
            v=sql.Identifier(self.version_column),
            window=_window_sql(ctx, "b"),
        )

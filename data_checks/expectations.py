"""Row-level expectations: one GX expectation over the suite's window, plus small builders.

`Expect` wraps any built-in GX expectation by class name. The builders (`not_null`, `between`,
`in_set`, ...) exist so suites read like the contract they enforce.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from psycopg import sql
from psycopg.rows import dict_row

from data_checks.suite_types import CLOCK_SKEW, ValidationContext

if TYPE_CHECKING:
    import psycopg

    from data_checks.gx_api import GxApi

Where = tuple[tuple[str, str, Any], ...]


def jsonable(value: Any) -> Any:
    """Rows and GX results as JSON-safe values (timestamps as ISO text, Decimals as floats)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def fetch(
    conn: psycopg.Connection, query: sql.SQL | sql.Composed, params: Any = None
) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return [jsonable(dict(r)) for r in cur.fetchall()]


@dataclass(frozen=True)
class Later:
    """A value known only at validation time, e.g. 'now + 5 minutes'."""

    text: str
    resolve: Callable[[ValidationContext], Any] = field(compare=False)

    def __str__(self) -> str:
        return self.text


FUTURE = Later("now + 5 min", lambda ctx: ctx.now + CLOCK_SKEW)


@dataclass(frozen=True)
class Expect:
    """A built-in GX expectation over the window's rows (or the whole table for schema facts).

    `where` narrows the rows further, e.g. `(("status", "==", "completed"),)`.
    """

    type_name: str
    args: Mapping[str, Any] = field(default_factory=dict)
    why: str = ""
    where: Where = ()
    whole_table: bool = False

    @property
    def column(self) -> str | None:
        col = self.args.get("column") or self.args.get("column_A")
        return str(col) if col else None

    @property
    def label(self) -> str:
        if self.why:
            return self.why
        shown = ", ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.type_name}({shown})"

    def prepare(self, conn: psycopg.Connection, ctx: ValidationContext) -> dict[str, Any]:
        return {}

    def build(self, gx: GxApi, ctx: ValidationContext, prepared: dict[str, Any]) -> Any:
        kwargs = {k: v.resolve(ctx) if isinstance(v, Later) else v for k, v in self.args.items()}
        if self.whole_table:
            cond = gx.all_of([gx.compare(c, op, v) for c, op, v in self.where])
        else:
            cond = ctx.condition(gx, self.where)
        if cond is not None:
            kwargs["row_condition"] = cond
        return gx.expectation(self.type_name, **kwargs)

    def sample(
        self, conn: psycopg.Connection, ctx: ValidationContext, result: dict[str, Any], limit: int
    ) -> list[dict[str, Any]]:
        """Whole rows for the first offending keys GX reported (it reports key + value only)."""
        index = result.get("partial_unexpected_index_list") or []
        key = ctx.suite.key[0]
        keys = [r[key] for r in index if isinstance(r, dict) and r.get(key) is not None][:limit]
        if not keys:
            return jsonable(list(index[:limit]))
        query = sql.SQL("select * from {rel} where {key} = any(%s) limit %s").format(
            rel=sql.Identifier(*ctx.suite.relation), key=sql.Identifier(key)
        )
        return fetch(conn, query, (keys, limit)) or jsonable(list(index[:limit]))


# --- builders ----------------------------------------------------------------------------------


def schema(types: Mapping[str, str]) -> list[Expect]:
    """Exactly these columns, each of this database type (as GX reports it)."""
    return [
        Expect(
            "ExpectTableColumnsToMatchSet",
            {"column_set": list(types), "exact_match": True},
            why="columns are exactly " + ", ".join(types),
            whole_table=True,
        ),
        *(
            Expect(
                "ExpectColumnValuesToBeOfType",
                {"column": col, "type_": t},
                why=f"{col} is {t}",
                whole_table=True,
            )
            for col, t in types.items()
        ),
    ]


def not_null(*columns: str, where: Where = ()) -> list[Expect]:
    return [
        Expect("ExpectColumnValuesToNotBeNull", {"column": c}, f"{c} is not null", where)
        for c in columns
    ]


def in_set(column: str, values: tuple[str, ...], where: Where = ()) -> Expect:
    return Expect(
        "ExpectColumnValuesToBeInSet",
        {"column": column, "value_set": list(values)},
        f"{column} in {{{', '.join(values)}}}",
        where,
    )


def between(
    column: str, low: Any = None, high: Any = None, where: Where = (), why: str = ""
) -> Expect:
    args: dict[str, Any] = {"column": column}
    if low is not None:
        args["min_value"] = low
    if high is not None:
        args["max_value"] = high
    lo = "-inf" if low is None else str(low)
    hi = "+inf" if high is None else str(high)
    return Expect("ExpectColumnValuesToBeBetween", args, why or f"{column} in [{lo}, {hi}]", where)


def not_future(*columns: str, where: Where = ()) -> list[Expect]:
    return [between(c, high=FUTURE, where=where, why=f"{c} not in the future") for c in columns]


def null_unless(column: str, where: Where, why: str) -> Expect:
    return Expect("ExpectColumnValuesToBeNull", {"column": column}, why, where)


def not_before(column: str, other: str) -> Expect:
    return Expect(
        "ExpectColumnPairValuesAToBeGreaterThanB",
        {
            "column_A": column,
            "column_B": other,
            "or_equal": True,
            "ignore_row_if": "either_value_is_missing",
        },
        f"{column} >= {other}",
    )

"""Trend expectations on a whole table: freshness, volume against the trailing 7-day average
and distribution shifts. Each computes its bounds from the warehouse first (parameterized SQL),
then is an ordinary GX expectation over the last 24 hours. With too little history to compare
against they are skipped, with the reason recorded."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from psycopg import sql

from data_checks.suite_types import CLOCK_SKEW, ValidationContext

if TYPE_CHECKING:
    import psycopg

    from data_checks.gx_api import GxApi

DAY = timedelta(days=1)
TRAILING_DAYS = 7


def span(td: timedelta) -> str:
    """'3 d', '2 h', '90 min' -- durations as people write them in labels."""
    minutes = round(td.total_seconds() / 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)} d"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def _recent(gx: GxApi, column: str, ctx: ValidationContext) -> Any:
    """Rows of the last 24 hours (up to the clock-skew allowance)."""
    return gx.all_of(
        [gx.compare(column, ">", ctx.now - DAY), gx.compare(column, "<=", ctx.now + CLOCK_SKEW)]
    )


@dataclass(frozen=True)
class Freshness:
    """The newest `column` value is at most `max_age` old (stale data / stopped source)."""

    column: str
    max_age: timedelta
    as_date: bool = False

    @property
    def label(self) -> str:
        return f"newest {self.column} within {span(self.max_age)} of now"

    def prepare(self, conn: psycopg.Connection, ctx: ValidationContext) -> dict[str, Any]:
        return {}

    def build(self, gx: GxApi, ctx: ValidationContext, prepared: dict[str, Any]) -> Any:
        oldest_ok: Any = ctx.now - self.max_age
        if self.as_date:
            oldest_ok = oldest_ok.date()
        prepared["min_value"] = oldest_ok.isoformat()
        return gx.expectation("ExpectColumnMaxToBeBetween", column=self.column, min_value=oldest_ok)

    def sample(self, *_args: Any, **_kw: Any) -> list[dict[str, Any]]:
        return []


def _trailing_query(rel: tuple[str, str], time_column: str, select: sql.Composable) -> sql.Composed:
    return sql.SQL("select {select} from {rel} where {t} > %(start)s and {t} <= %(end)s").format(
        select=select, rel=sql.Identifier(*rel), t=sql.Identifier(time_column)
    )


def _params(ctx: ValidationContext) -> dict[str, Any]:
    return {
        "start": ctx.now - (TRAILING_DAYS + 1) * DAY,
        "cut": ctx.now - DAY,
        "end": ctx.now + CLOCK_SKEW,
    }


@dataclass(frozen=True)
class Volume:
    """Rows of the last 24 h within [low, high] x the trailing 7-day daily average.

    Needs `min_history_days` of history before the last day; with less, it is skipped.
    """

    time_column: str = "created_at"
    low: float = 0.5
    high: float = 2.0
    min_history_days: float = 3.0
    column: None = None

    @property
    def label(self) -> str:
        return (
            f"rows with {self.time_column} in the last 24 h within {self.low}x-{self.high}x"
            f" the trailing {TRAILING_DAYS}-day daily average"
        )

    def prepare(self, conn: psycopg.Connection, ctx: ValidationContext) -> dict[str, Any]:
        t = sql.Identifier(self.time_column)
        select = sql.SQL("count(*) filter (where {t} <= %(cut)s), min({t})").format(t=t)
        params = _params(ctx)
        with conn.cursor() as cur:
            cur.execute(_trailing_query(ctx.suite.relation, self.time_column, select), params)
            before, oldest = cur.fetchone()  # type: ignore[misc]
        older = sql.SQL("select exists (select 1 from {rel} where {t} <= %(start)s)").format(
            rel=sql.Identifier(*ctx.suite.relation), t=t
        )
        if conn.execute(older, params).fetchone()[0]:  # type: ignore[index]
            days = float(TRAILING_DAYS)
        else:  # history starts inside the trailing week: average over what there is
            days = 0.0 if oldest is None else (params["cut"] - oldest) / DAY
            days = min(float(TRAILING_DAYS), max(days, 0.0))
        if days < self.min_history_days or not before:
            return {"skipped": f"only {days:.1f} days of history before the last 24 h"}
        avg = before / days
        return {
            "trailing_daily_avg": round(avg, 1),
            "history_days": round(days, 1),
            "min_value": math.floor(self.low * avg),
            "max_value": math.ceil(self.high * avg),
        }

    def build(self, gx: GxApi, ctx: ValidationContext, prepared: dict[str, Any]) -> Any | None:
        if "skipped" in prepared:
            return None
        return gx.expectation(
            "ExpectTableRowCountToBeBetween",
            min_value=prepared["min_value"],
            max_value=prepared["max_value"],
            row_condition=_recent(gx, self.time_column, ctx),
        )

    def sample(self, *_args: Any, **_kw: Any) -> list[dict[str, Any]]:
        return []


@dataclass(frozen=True)
class MeanShift:
    """The last 24 h mean of `column` within +-`tolerance` of the trailing 7-day mean."""

    column: str
    time_column: str
    tolerance: float
    min_rows: int = 50

    @property
    def label(self) -> str:
        return f"mean {self.column} of the last 24 h within +-{self.tolerance} of the trailing mean"

    def prepare(self, conn: psycopg.Connection, ctx: ValidationContext) -> dict[str, Any]:
        select = sql.SQL(
            "avg({c}) filter (where {t} <= %(cut)s), count({c}) filter (where {t} <= %(cut)s),"
            " count({c}) filter (where {t} > %(cut)s)"
        ).format(c=sql.Identifier(self.column), t=sql.Identifier(self.time_column))
        with conn.cursor() as cur:
            cur.execute(_trailing_query(ctx.suite.relation, self.time_column, select), _params(ctx))
            mean, before, recent = cur.fetchone()  # type: ignore[misc]
        if before < self.min_rows or recent < self.min_rows:
            return {"skipped": f"too few values ({before} before, {recent} in the last 24 h)"}
        mean = float(mean)
        return {
            "trailing_mean": round(mean, 3),
            "min_value": round(mean - self.tolerance, 3),
            "max_value": round(mean + self.tolerance, 3),
        }

    def build(self, gx: GxApi, ctx: ValidationContext, prepared: dict[str, Any]) -> Any | None:
        if "skipped" in prepared:
            return None
        return gx.expectation(
            "ExpectColumnMeanToBeBetween",
            column=self.column,
            min_value=prepared["min_value"],
            max_value=prepared["max_value"],
            row_condition=_recent(gx, self.time_column, ctx),
        )

    def sample(self, *_args: Any, **_kw: Any) -> list[dict[str, Any]]:
        return []


@dataclass(frozen=True)
class CategoryShift:
    """The last 24 h mix of a categorical `column` stays within `max_kl` (KL divergence) of
    the trailing 7-day mix."""

    column: str
    time_column: str
    max_kl: float = 0.15
    min_rows: int = 100
    new_value_weight: float = 0.01

    @property
    def label(self) -> str:
        return (
            f"mix of {self.column} in the last 24 h close to the trailing mix (KL < {self.max_kl})"
        )

    def prepare(self, conn: psycopg.Connection, ctx: ValidationContext) -> dict[str, Any]:
        c, t = sql.Identifier(self.column), sql.Identifier(self.time_column)
        select = sql.SQL(
            "{c}::text, count(*) filter (where {t} <= %(cut)s),"
            " count(*) filter (where {t} > %(cut)s)"
        ).format(c=c, t=t)
        query = _trailing_query(ctx.suite.relation, self.time_column, select) + sql.SQL(
            " and {c} is not null group by 1 order by 1"
        ).format(c=c)
        with conn.cursor() as cur:
            cur.execute(query, _params(ctx))
            rows = cur.fetchall()
        before = sum(r[1] for r in rows)
        recent = sum(r[2] for r in rows)
        if before < self.min_rows or recent < self.min_rows:
            return {"skipped": f"too few rows ({before} before, {recent} in the last 24 h)"}
        values = [r[0] for r in rows if r[1]]
        weights = [r[1] / before for r in rows if r[1]]
        return {"values": values, "weights": [round(w, 6) for w in weights]}

    def build(self, gx: GxApi, ctx: ValidationContext, prepared: dict[str, Any]) -> Any | None:
        if "skipped" in prepared:
            return None
        total = sum(prepared["weights"])
        return gx.expectation(
            "ExpectColumnKLDivergenceToBeLessThan",
            column=self.column,
            partition_object={
                "values": prepared["values"],
                "weights": [w / total for w in prepared["weights"]],
            },
            threshold=self.max_kl,
            # A category never seen in the trailing week gets this much expected weight, so a
            # handful of rows with a new value does not read as an infinite divergence.
            tail_weight_holdout=self.new_value_weight,
            row_condition=_recent(gx, self.time_column, ctx),
        )

    def sample(self, *_args: Any, **_kw: Any) -> list[dict[str, Any]]:
        return []

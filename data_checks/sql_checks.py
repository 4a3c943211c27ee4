"""The blocking raw suites compiled to one SQL statement each, without Great Expectations.

The incremental cycle runs `valid_batch` and `quarantine_rate` of the tables it loads in every
run; with GX each run process paid ~8 s to import it before the first check. This module reads
the same suites (the same specs, derived from the row contracts in `contract_rules.py` and
`raw_suites.py`) and evaluates every expectation of a suite in one statement:

    select count(*),                                         -- rows in the window
           count(*) filter (where status is null),           -- one count per row rule
           ...,
           (select count(*) from (<unique/reference query>) q),  -- set-level rules
           (select json_object_agg(...) from information_schema.columns ...)  -- schema
    from raw.sessions b where b._ingested_at > since and b._ingested_at <= until

with GX's semantics, rule by rule: map expectations ignore nulls (except the null checks), a
pair comparison skips rows where either value is missing, row conditions AND with the window,
an "unexpected rows" query passes when it returns nothing, a column type is the database's
(`information_schema.columns.data_type`, as GX's SQLAlchemy inspector names it). Windows,
history (`quality.check_runs`), samples of offending rows and the result objects are the
runner's, so the alert engine, the Dagster UI and the next window see no difference; only the
Data Docs page is not rendered. tests/integration/test_sql_checks.py runs both engines on good
and bad batches and compares every verdict.

Suites with other specs (the `trends` suites: freshness, volume, distribution shifts) are not
compiled (`NotCompilableError`); GX stays their engine, and the engine of record for Data Docs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from data_checks.expectations import Expect, Later, fetch, jsonable
from data_checks.integrity import _RowsQuery
from data_checks.quarantine import QuarantineRate
from data_checks.result import CheckResult, ExpectationOutcome
from data_checks.suite_types import LoadFacts, Spec, Suite, ValidationContext
from data_checks.windows import FROM_HISTORY, SAMPLE_SIZE, _FromHistory, prepare_suite
from opsdash_core.db import connect


class NotCompilableError(ValueError):
    """A spec this module cannot express (GX runs the suite instead)."""


OPS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

ROW_RULES = {
    "ExpectColumnValuesToNotBeNull",
    "ExpectColumnValuesToBeNull",
    "ExpectColumnValuesToBeInSet",
    "ExpectColumnValuesToBeBetween",
    "ExpectColumnValueLengthsToBeBetween",
    "ExpectColumnPairValuesAToBeGreaterThanB",
}
SCHEMA_RULES = {"ExpectTableColumnsToMatchSet", "ExpectColumnValuesToBeOfType"}


def snake(type_name: str) -> str:
    """`ExpectColumnValuesToNotBeNull` -> `expect_column_values_to_not_be_null` (GX's name)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type_name).lower()


def compilable(suite: Suite) -> bool:
    """Whether every spec of the suite has a SQL form here."""
    for spec in suite.specs:
        if isinstance(spec, Expect):
            if spec.type_name not in ROW_RULES | SCHEMA_RULES:
                return False
        elif not isinstance(spec, _RowsQuery | QuarantineRate):
            return False
    return True


def _value(ctx: ValidationContext, value: Any) -> Any:
    return value.resolve(ctx) if isinstance(value, Later) else value


def _where(where: tuple[tuple[str, str, Any], ...]) -> list[sql.Composable]:
    parts: list[sql.Composable] = []
    for column, op, value in where:
        col = sql.Identifier("b", column)
        if op in OPS:
            parts.append(sql.SQL("{} {} {}").format(col, sql.SQL(OPS[op]), sql.Literal(value)))
        elif op == "is null":
            parts.append(sql.SQL("{} is null").format(col))
        elif op == "is not null":
            parts.append(sql.SQL("{} is not null").format(col))
        elif op in ("in", "not in"):
            values = sql.SQL(", ").join(sql.Literal(v) for v in value)
            parts.append(sql.SQL("{} {} ({})").format(col, sql.SQL(op), values))
        else:
            raise NotCompilableError(f"row condition operator {op!r}")
    return parts


def _and(parts: Sequence[sql.Composable]) -> sql.Composable:
    return sql.SQL(" and ").join(parts) if parts else sql.SQL("true")


def _unexpected(spec: Expect, ctx: ValidationContext) -> sql.Composable:
    """The condition a row breaks `spec` by (GX's semantics for that expectation)."""
    args = spec.args
    name = spec.type_name
    if name == "ExpectColumnPairValuesAToBeGreaterThanB":
        a, b = sql.Identifier("b", args["column_A"]), sql.Identifier("b", args["column_B"])
        op = sql.SQL(">=" if args.get("or_equal") else ">")
        if args.get("ignore_row_if", "both_values_are_missing") != "either_value_is_missing":
            raise NotCompilableError(f"ignore_row_if={args.get('ignore_row_if')}")
        return sql.SQL("{a} is not null and {b} is not null and not ({a} {op} {b})").format(
            a=a, b=b, op=op
        )
    col = sql.Identifier("b", args["column"])
    if name == "ExpectColumnValuesToNotBeNull":
        return sql.SQL("{} is null").format(col)
    if name == "ExpectColumnValuesToBeNull":
        return sql.SQL("{} is not null").format(col)
    if name == "ExpectColumnValuesToBeInSet":
        values = sql.SQL(", ").join(sql.Literal(v) for v in args["value_set"])
        return sql.SQL("{c} is not null and {c} not in ({v})").format(c=col, v=values)
    if name in ("ExpectColumnValuesToBeBetween", "ExpectColumnValueLengthsToBeBetween"):
        if args.get("strict_min") or args.get("strict_max"):
            raise NotCompilableError("strict bounds")
        value: sql.Composable = col
        if name == "ExpectColumnValueLengthsToBeBetween":
            value = sql.SQL("length({})").format(col)
        inside = []
        if args.get("min_value") is not None:
            low = _value(ctx, args["min_value"])
            inside.append(sql.SQL("{} >= {}").format(value, sql.Literal(low)))
        if args.get("max_value") is not None:
            high = _value(ctx, args["max_value"])
            inside.append(sql.SQL("{} <= {}").format(value, sql.Literal(high)))
        return sql.SQL("{} is not null and not ({})").format(col, _and(inside))
    raise NotCompilableError(name)


def _window(ctx: ValidationContext) -> list[sql.Composable]:
    w = ctx.window
    parts: list[sql.Composable] = []
    if w.column is not None:
        col = sql.Identifier("b", w.column)
        if w.since is not None:
            parts.append(sql.SQL("{} > {}").format(col, sql.Literal(w.since)))
        if w.until is not None:
            parts.append(sql.SQL("{} <= {}").format(col, sql.Literal(w.until)))
    return parts


@dataclass(frozen=True)
class Term:
    """One column of the suite's statement and which spec reads it."""

    spec: int
    kind: str  # rows (breaking, in scope), set (rows a query returns), schema, quarantine
    expr: sql.Composable


def _columns(suite: Suite) -> sql.Composable:
    schema, table = suite.relation
    return sql.SQL(
        "(select coalesce(json_object_agg(column_name, upper(data_type)), '{{}}'::json)"
        " from information_schema.columns where table_schema = {} and table_name = {})"
    ).format(sql.Literal(schema), sql.Literal(table))


def compile_suite(
    suite: Suite, ctx: ValidationContext, prepared: list[dict[str, Any]]
) -> tuple[list[Term], list[str]]:
    """The statement's terms, and notes on the specs skipped (as GX's runner notes them)."""
    terms: list[Term] = []
    skipped: list[str] = []
    for i, (spec, prep) in enumerate(zip(suite.specs, prepared, strict=True)):
        if isinstance(spec, Expect):
            if spec.type_name in SCHEMA_RULES:
                terms.append(Term(i, "schema", _columns(suite)))
                continue
            breaks = _and([*_where(spec.where), sql.SQL("({})").format(_unexpected(spec, ctx))])
            in_scope = _and(_where(spec.where))
            terms.append(
                Term(
                    i,
                    "rows",
                    sql.SQL("count(*) filter (where {}), count(*) filter (where {})").format(
                        breaks, in_scope
                    ),
                )
            )
        elif isinstance(spec, _RowsQuery):
            query = spec.query(ctx, sql.Identifier(*suite.relation), sql.SQL("1"))
            terms.append(Term(i, "set", sql.SQL("(select count(*) from ({}) q)").format(query)))
        elif isinstance(spec, QuarantineRate):
            if "skipped" in prep or ctx.facts is None:
                skipped.append(f"{spec.label}: {prep.get('skipped', 'not applicable')}")
                continue
            terms.append(
                Term(
                    i,
                    "quarantine",
                    sql.SQL(
                        "(select count(*) from raw.quarantine where table_name = {}"
                        " and run_id = {})"
                    ).format(sql.Literal(spec.table), sql.Literal(ctx.facts.run_id)),
                )
            )
        else:
            raise NotCompilableError(type(spec).__name__)
    return terms, skipped


def statement(suite: Suite, ctx: ValidationContext, terms: list[Term]) -> sql.Composed:
    """One SELECT for every term: row rules aggregate the window's rows in one scan."""
    exprs = sql.SQL(", ").join(t.expr for t in terms)
    if any(t.kind == "rows" for t in terms):
        return sql.SQL("select count(*), {} from {} b where {}").format(
            exprs, sql.Identifier(*suite.relation), _and(_window(ctx))
        )
    return sql.SQL("select null, {}").format(exprs)


def _width(term: Term) -> int:
    return 2 if term.kind == "rows" else 1


def _evaluate(
    conn: psycopg.Connection, suite: Suite, ctx: ValidationContext, terms: list[Term]
) -> tuple[Any, list[Any], list[str | None]]:
    """Values per term: the one statement, or (when it cannot run, e.g. a dropped column) each
    term alone, so the other rules still get their verdict and the broken one an error."""
    try:
        row = conn.execute(statement(suite, ctx, terms)).fetchone()
    except psycopg.Error:
        conn.rollback()
    else:
        assert row is not None
        split: list[Any] = []
        pos = 1
        for term in terms:
            split.append(tuple(row[pos : pos + _width(term)]))
            pos += _width(term)
        return row[0], split, [None] * len(terms)
    values: list[Any] = []
    errors: list[str | None] = []
    rows = None
    for term in terms:
        try:
            one = conn.execute(statement(suite, ctx, [term])).fetchone()
        except psycopg.Error as exc:
            conn.rollback()
            values.append(None)
            errors.append(f"{type(exc).__name__}: {exc}".strip())
        else:
            assert one is not None
            rows = one[0] if one[0] is not None else rows
            values.append(tuple(one[1:]))
            errors.append(None)
    return rows, values, errors


def _schema_verdict(spec: Expect, columns: dict[str, str]) -> tuple[bool, Any]:
    if spec.type_name == "ExpectTableColumnsToMatchSet":
        wanted = set(spec.args["column_set"])
        ok = (
            set(columns) == wanted if spec.args.get("exact_match", True) else wanted <= set(columns)
        )
        return ok, sorted(columns)
    column = spec.args["column"]
    observed = columns.get(column)
    return observed == spec.args["type_"], observed


def _row_sample(
    conn: psycopg.Connection, suite: Suite, ctx: ValidationContext, spec: Expect
) -> list[dict[str, Any]]:
    breaks = _and(
        [*_window(ctx), *_where(spec.where), sql.SQL("({})").format(_unexpected(spec, ctx))]
    )
    query = sql.SQL("select b.* from {} b where {} limit {}").format(
        sql.Identifier(*suite.relation), breaks, sql.Literal(SAMPLE_SIZE)
    )
    return fetch(conn, query)


def _outcome(
    conn: psycopg.Connection,
    ctx: ValidationContext,
    spec: Spec,
    term: Term,
    value: tuple[Any, ...] | None,
    error: str | None,
    prepared: dict[str, Any],
) -> ExpectationOutcome:
    suite = ctx.suite
    details = jsonable({k: v for k, v in prepared.items() if k != "skipped"})
    kind = getattr(spec, "type_name", None)
    if isinstance(spec, _RowsQuery):
        kind = "UnexpectedRowsExpectation"
    elif isinstance(spec, QuarantineRate):
        kind = "ExpectTableRowCountToBeBetween"
    expectation = snake(str(kind))
    if value is None:
        return ExpectationOutcome(
            expectation, spec.label, spec.column, False, details=details, error=error
        )
    unexpected: int | None = None
    elements: int | None = None
    if term.kind == "schema":
        assert isinstance(spec, Expect)
        success, observed = _schema_verdict(spec, dict(value[0] or {}))
    elif term.kind == "rows":
        unexpected, elements = int(value[0]), int(value[1])
        success = unexpected == 0
        pct = 100.0 * unexpected / elements if elements else 0.0
        observed = {"unexpected_count": unexpected, "unexpected_percent": pct}
    elif term.kind == "set":
        count = int(value[0])
        success, observed = count == 0, count
    else:
        count = int(value[0])
        success = count <= prepared["max_value"]
        assert isinstance(spec, QuarantineRate)
        observed = jsonable(spec.observe(count, prepared))
    sample: list[dict[str, Any]] = []
    if not success:
        try:
            if term.kind == "rows":
                assert isinstance(spec, Expect)
                sample = _row_sample(conn, suite, ctx, spec)
            else:
                sample = spec.sample(conn, ctx, {}, SAMPLE_SIZE)
        except psycopg.Error as exc:
            conn.rollback()
            sample = [{"sample_error": str(exc)}]
    return ExpectationOutcome(
        expectation,
        spec.label,
        spec.column,
        success,
        observed=jsonable(observed),
        unexpected_count=unexpected,
        element_count=elements,
        sample=sample,
        details=details,
    )


def validate_sql(
    url: str,
    suite: Suite,
    *,
    run_id: str | None = None,
    facts: LoadFacts | None = None,
    since: datetime | _FromHistory | None = FROM_HISTORY,
) -> CheckResult:
    """`runner.validate`, evaluated by one SQL statement instead of GX (no Data Docs page)."""
    if not compilable(suite):
        raise NotCompilableError(f"{suite.name} has specs without a SQL form")
    started = time.monotonic()
    outcomes: list[ExpectationOutcome] = []
    skipped: list[str] = []
    with connect(url) as conn:
        ready = prepare_suite(conn, suite, since, facts)
        now, ctx, window, empty, prepared = (
            ready.now,
            ready.ctx,
            ready.ctx.window,
            ready.empty,
            ready.prepared,
        )
        outcomes.extend(ready.outcomes)
        if empty:
            skipped.append("no new rows since the last check")
        elif prepared:
            terms, skipped = compile_suite(suite, ctx, prepared)
            if terms:
                _rows, values, errors = _evaluate(conn, suite, ctx, terms)
                for term, value, error in zip(terms, values, errors, strict=True):
                    spec = suite.specs[term.spec]
                    outcomes.append(
                        _outcome(conn, ctx, spec, term, value, error, prepared[term.spec])
                    )
    outcomes.sort(key=lambda o: (o.success, o.label))
    return CheckResult(
        suite=suite.name,
        check=suite.check,
        asset=suite.asset_path,
        severity=suite.severity,
        success=all(o.success for o in outcomes),
        outcomes=tuple(outcomes),
        window=window,
        checked_at=now,
        seconds=time.monotonic() - started,
        run_id=run_id,
        skipped=tuple(skipped),
        data_docs=None,
        key=suite.key,
    )

"""The row contracts compiled to polars expressions: whole batches validated at once.

Pydantic validating one row at a time cost about ten times the load itself (issue 14). Here each
contract (`opsdash_core/contracts.py`) is read once, by introspection, into per-field rules —
type, nullability, enumeration, bounds, minimum length, the audit-timestamp rules — and the
cross-field validators are matched by name to their vectorized twins below. A contract that
gains a validator this module does not know fails loudly at compile time instead of being
silently skipped, and `tests/unit/test_ingest_vectorized.py` runs both validators over
thousands of mutated rows and demands the same verdict and the same reason text.

Pydantic stays the engine of record for anything the fast path does not type exactly: a row
whose value is not of the plain JSON/Python type its field expects (a string where an integer
belongs, a naive datetime, a missing required key, ...) is validated by the contract itself,
so its coercion or its message is pydantic's own.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo

import polars as pl
from pydantic import BaseModel, ValidationError

from opsdash_core.contracts import AUDIT_TIMESTAMPS, CLOCK_SKEW, SourceRow, raw_columns

Kind = Literal["int", "str", "bool", "datetime", "literal"]

POLARS_TYPES: dict[str, pl.DataType] = {
    "int": pl.Int64(),
    "str": pl.String(),
    "literal": pl.String(),
    "bool": pl.Boolean(),
    "datetime": pl.Datetime("us", "UTC"),
}

NULL_MESSAGES: dict[str, str] = {
    "int": "Input should be a valid integer",
    "str": "Input should be a valid string",
    "bool": "Input should be a valid boolean",
    "datetime": "Input should be a valid datetime",
}
"""Pydantic's message for a None where a value is required, by kind (literals: their list)."""

BOUND_MESSAGES = {
    "gt": "Input should be greater than {}",
    "ge": "Input should be greater than or equal to {}",
    "lt": "Input should be less than {}",
    "le": "Input should be less than or equal to {}",
}

FUTURE = "\x00future\x00"
"""Stands for the offending timestamp in a reason until the row's own rendering of it is known
(pydantic prints `value.isoformat()` in the offset the value arrived with)."""

INT64 = (-(2**63), 2**63 - 1)
# RFC 3339 with an explicit offset: the one string form parsed here; pydantic takes the rest.
ISO_AWARE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}:\d{2}|Z)$"


@dataclass(frozen=True)
class FieldRule:
    """One contract field as the vectorized validator needs it."""

    name: str
    kind: Kind
    nullable: bool
    required: bool
    values: tuple[str, ...] = ()
    bounds: tuple[tuple[str, int], ...] = ()
    min_length: int | None = None
    audit: bool = False

    @property
    def dtype(self) -> pl.DataType:
        return POLARS_TYPES[self.kind]

    def null_message(self) -> str:
        if self.kind == "literal":
            return literal_message(self.values)
        return NULL_MESSAGES[self.kind]


def literal_message(values: Sequence[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return f"Input should be {listed}"


RowRule = Callable[[], tuple[pl.Expr, pl.Expr]]
"""A cross-field validator's twin: (the row breaks it, its message) as polars expressions."""


def _updated_after_created() -> tuple[pl.Expr, pl.Expr]:
    return pl.col("updated_at") < pl.col("created_at"), pl.lit("updated_at is before created_at")


def _window() -> tuple[pl.Expr, pl.Expr]:
    return pl.col("end_hour") <= pl.col("start_hour"), pl.lit("end_hour must be after start_hour")


def _status_fields() -> tuple[pl.Expr, pl.Expr]:
    broken = pl.col("rating").is_not_null() & (pl.col("status") != "completed")
    return broken, pl.concat_str(pl.lit("rating on a "), pl.col("status"), pl.lit(" session"))


ROW_RULES: dict[str, RowRule] = {
    "_updated_after_created": _updated_after_created,
    "_window": _window,
    "_status_fields": _status_fields,
}
"""Every `model_validator` of the contracts, by function name, as a polars expression."""

FIELD_VALIDATORS = {"_aware_and_not_future": AUDIT_TIMESTAMPS}
"""Every `field_validator` of the contracts and the fields it may apply to."""


class UnsupportedContractError(TypeError):
    """A contract says something the vectorized validator cannot (yet) say the same way."""


@dataclass(frozen=True)
class Plan:
    """A compiled contract: fields in pydantic's validation order, then the row rules."""

    model: type[SourceRow]
    fields: tuple[FieldRule, ...]
    columns: tuple[str, ...]
    row_rules: tuple[RowRule, ...]

    @property
    def schema(self) -> dict[str, pl.DataType]:
        by_name = {f.name: f for f in self.fields}
        return {c: by_name[c].dtype for c in self.columns}


def _field_rule(name: str, annotation: Any, metadata: list[Any], required: bool) -> FieldRule:
    nullable = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise UnsupportedContractError(f"{name}: unsupported annotation {annotation!r}")
        annotation, nullable = rest[0], True
    found = list(metadata)
    if get_origin(annotation) is Annotated:
        annotation, *inner = get_args(annotation)
        found.extend(inner)
    values: tuple[str, ...] = ()
    kind: Kind
    if get_origin(annotation) is Literal:
        values = get_args(annotation)
        if not all(type(v) is str for v in values):
            raise UnsupportedContractError(f"{name}: only string literals are vectorized")
        kind = "literal"
    elif annotation in (int, str, bool, datetime):
        kind = annotation.__name__
    else:
        raise UnsupportedContractError(f"{name}: unsupported type {annotation!r}")
    bounds: list[tuple[str, int]] = []
    min_length = None
    for m in found:
        for op in ("gt", "ge", "lt", "le"):
            if getattr(m, op, None) is not None:
                if kind != "int":
                    raise UnsupportedContractError(f"{name}: bounds only on integers")
                bounds.append((op, getattr(m, op)))
        if getattr(m, "min_length", None) is not None:
            min_length = m.min_length
        if getattr(m, "max_length", None) is not None or getattr(m, "pattern", None):
            raise UnsupportedContractError(f"{name}: max_length/pattern not vectorized")
    return FieldRule(
        name,
        kind,
        nullable,
        required,
        values,
        tuple(bounds),
        min_length,
        audit=name in AUDIT_TIMESTAMPS,
    )


@cache
def compile_contract(model: type[SourceRow]) -> Plan:
    """The contract as polars rules; raises if it holds a rule without a vectorized twin."""
    decorators = model.__pydantic_decorators__
    for fname, dec in decorators.field_validators.items():
        allowed = FIELD_VALIDATORS.get(fname)
        if allowed is None or not set(dec.info.fields) <= set(allowed):
            raise UnsupportedContractError(
                f"{model.__name__}.{fname}: a field validator without a vectorized twin"
            )
    rules = []
    for vname in decorators.model_validators:
        if vname not in ROW_RULES:
            raise UnsupportedContractError(
                f"{model.__name__}.{vname}: a model validator without a vectorized twin "
                "(add it to ROW_RULES in orchestration/lib/ingest/vectorized.py)"
            )
        rules.append(ROW_RULES[vname])
    fields = tuple(
        _field_rule(name, info.annotation, list(info.metadata), info.is_required())
        for name, info in model.model_fields.items()
    )
    return Plan(model, fields, raw_columns(model), tuple(rules))


def _field_checks(rule: FieldRule, now: datetime) -> list[tuple[pl.Expr, pl.Expr | str]]:
    """(broken, message) pairs in the order pydantic checks them; the first broken one wins."""
    col = pl.col(rule.name)
    checks: list[tuple[pl.Expr, pl.Expr | str]] = []
    if not rule.nullable:
        checks.append((col.is_null(), rule.null_message()))
    if rule.kind == "literal":
        checks.append((~col.is_in(list(rule.values)), literal_message(rule.values)))
    for op, bound in rule.bounds:
        broken = {"gt": col <= bound, "ge": col < bound, "lt": col >= bound, "le": col > bound}
        checks.append((broken[op], BOUND_MESSAGES[op].format(bound)))
    if rule.min_length is not None:
        plural = "" if rule.min_length == 1 else "s"
        checks.append(
            (
                col.str.len_chars() < rule.min_length,
                f"String should have at least {rule.min_length} character{plural}",
            )
        )
    if rule.audit:
        limit = pl.lit(now + CLOCK_SKEW, dtype=pl.Datetime("us", "UTC"))
        checks.append((col > limit, f"Value error, {rule.name} {FUTURE} is in the future"))
    return [(broken.fill_null(False), msg) for broken, msg in checks]


def _as_expr(msg: pl.Expr | str) -> pl.Expr:
    return pl.lit(msg) if isinstance(msg, str) else msg


def _first(checks: list[tuple[pl.Expr, pl.Expr | str]]) -> pl.Expr:
    """The message of the first broken check, else null."""
    expr: Any = pl
    for broken, msg in checks:
        expr = expr.when(broken).then(_as_expr(msg))
    return expr.otherwise(pl.lit(None, dtype=pl.String))


@dataclass
class Verdict:
    """A validated frame: valid rows (contract columns, warehouse types) and rejected rows
    (every column plus `__reason`, with `__row` the row's position in the input)."""

    valid: pl.DataFrame
    rejected: pl.DataFrame


def validate_frame(plan: Plan, frame: pl.DataFrame, now: datetime) -> Verdict:
    """Split a typed frame (one column per contract field, `__row` numbering) by the contract.

    Reasons are pydantic's: `field: message` for every broken field in field order, and only
    when every field is fine, the first broken cross-field rule as `row: Value error, ...`."""
    field_checks = {f.name: _field_checks(f, now) for f in plan.fields}
    row_checks = [rule() for rule in plan.row_rules]
    field_broken = [b for checks in field_checks.values() for b, _m in checks]
    row_broken = [b.fill_null(False) for b, _m in row_checks]
    bad = pl.any_horizontal(*field_broken, *row_broken) if field_broken or row_broken else None
    if bad is None:
        return Verdict(frame.select(plan.columns), frame.clear().with_columns(__reason=pl.lit("")))
    flagged = frame.with_columns(__bad=bad)
    valid = flagged.filter(~pl.col("__bad")).select(plan.columns)
    rejected = flagged.filter(pl.col("__bad")).drop("__bad")
    if rejected.height:
        per_field = [
            pl.concat_str(pl.lit(f"{name}: "), _first(checks))
            for name, checks in field_checks.items()
            if checks
        ]
        fields_reason = pl.concat_str(per_field, separator="; ", ignore_nulls=True)
        row_reason: pl.Expr = pl.lit(None, dtype=pl.String)
        if row_checks:
            row_reason = pl.concat_str(
                pl.lit("row: Value error, "),
                _first([(b.fill_null(False), m) for b, m in row_checks]),
            )
        rejected = rejected.with_columns(
            __reason=pl.when(fields_reason.fill_null("") != "")
            .then(fields_reason)
            .otherwise(row_reason)
        )
    else:
        rejected = rejected.with_columns(__reason=pl.lit("", dtype=pl.String))
    return Verdict(valid, rejected)


# --- rows as Python objects (the support API's JSON, psycopg dict rows, tests) -------------


class _Missing:
    """A key absent from the row (pydantic says "Field required", not "a valid integer")."""


MISSING = _Missing()
_NONE = type(None)
_FAST_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "str": (str,),
    "literal": (str,),
    "bool": (bool,),
    "datetime": (datetime, str),
}


def _typed_column(rule: FieldRule, values: list[Any], odd: set[int]) -> pl.Series:
    """The column as its polars type; positions whose value the fast path cannot type exactly
    are added to `odd` (pydantic decides those rows) and left null here."""
    fast = _FAST_TYPES[rule.kind]
    allowed = {*fast, _NONE} if rule.required else {*fast, _NONE, _Missing}
    if not set(map(type, values)) <= allowed:
        for i, v in enumerate(values):
            if type(v) not in allowed:
                odd.add(i)
                values[i] = None
    if any(v is MISSING for v in values):
        values = [None if v is MISSING else v for v in values]
    if rule.kind == "int":
        return _int_column(rule.name, values, odd)
    if rule.kind == "datetime":
        return _datetime_column(rule.name, values, odd)
    return pl.Series(rule.name, values, dtype=rule.dtype, strict=True)


def _int_column(name: str, values: list[Any], odd: set[int]) -> pl.Series:
    try:
        return pl.Series(name, values, dtype=pl.Int64, strict=True)
    except (OverflowError, pl.exceptions.PolarsError, TypeError):
        lo, hi = INT64
        for i, v in enumerate(values):
            if v is not None and not lo <= v <= hi:
                odd.add(i)
                values[i] = None
        return pl.Series(name, values, dtype=pl.Int64, strict=True)


def _datetime_column(name: str, values: list[Any], odd: set[int]) -> pl.Series:
    """Aware datetimes and RFC 3339 strings with an offset; naive or unusual -> odd."""
    kinds = set(map(type, values))
    texts: list[str | None] | None = None
    if str in kinds:
        texts = [v if type(v) is str else None for v in values]
        values = [v if type(v) is datetime else None for v in values]
    for i, v in enumerate(values):
        if v is not None and v.utcoffset() is None:
            odd.add(i)
            values[i] = None
    out = pl.Series(name, values, dtype=pl.Datetime("us", "UTC"))
    if texts is not None:
        raw = pl.Series(name, texts, dtype=pl.String)
        ok = raw.str.contains(ISO_AWARE).fill_null(False)
        parsed = (
            pl.when(ok)
            .then(raw.str.replace(r"Z$", "+00:00"))
            .otherwise(None)
            .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us", strict=False)
            .dt.convert_time_zone("UTC")
        )
        parsed_s = pl.select(parsed.alias(name)).to_series()
        failed = raw.is_not_null() & parsed_s.is_null()
        odd.update(failed.arg_true().to_list())
        out = out.fill_null(parsed_s)
    return out


def frame_from_rows(plan: Plan, rows: Sequence[dict[str, Any]]) -> tuple[pl.DataFrame, set[int]]:
    """(typed frame with a `__row` column, positions pydantic must decide)."""
    odd: set[int] = set()
    columns = []
    for rule in plan.fields:
        values = [r.get(rule.name, MISSING) for r in rows]
        columns.append(_typed_column(rule, values, odd))
    frame = pl.DataFrame(columns).with_row_index("__row")
    if odd:
        frame = frame.filter(~pl.col("__row").is_in(sorted(odd)))
    return frame, odd


def reference_check(
    model: type[BaseModel], row: dict[str, Any], now: datetime, columns: Sequence[str]
) -> tuple[tuple[Any, ...] | None, str | None]:
    """(values in column order, None) or (None, reason): the contract itself on one row."""
    try:
        rec = model.model_validate(row, context={"now": now})
    except ValidationError as exc:
        return None, pydantic_reason(exc)
    return tuple(getattr(rec, c) for c in columns), None


def pydantic_reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "row"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def valid_rows_frame(plan: Plan, values: list[tuple[Any, ...]]) -> pl.DataFrame:
    """Rows the contract accepted one by one, as a frame shaped like the vectorized output.

    A naive datetime the contract let through (only outside the audit timestamps) is taken as
    UTC, as the warehouse's UTC sessions read it."""
    schema = plan.schema
    fixed = [
        tuple(
            v.replace(tzinfo=ZoneInfo("UTC")) if type(v) is datetime and v.tzinfo is None else v
            for v in row
        )
        for row in values
    ]
    return pl.DataFrame(fixed, schema=schema, orient="row")


def render_future(reason: str, payload: dict[str, Any]) -> str:
    """Put each offending audit timestamp into the reason the way pydantic prints it."""
    if FUTURE not in reason:
        return reason
    for name in AUDIT_TIMESTAMPS:
        marker = f"{name} {FUTURE}"
        if marker in reason:
            reason = reason.replace(marker, f"{name} {_iso(payload.get(name))}")
    return reason


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return datetime.fromisoformat(str(value)).isoformat()


def python_rows(frame: pl.DataFrame, columns: Sequence[str], zone: tzinfo) -> list[dict[str, Any]]:
    """Rows as psycopg would have returned them: timestamps in the source session's zone."""
    out = frame.select(columns).to_dicts()
    for row in out:
        for k, v in row.items():
            if type(v) is datetime:
                row[k] = v.astimezone(zone)
    return out


ISO_AWARE_RE = re.compile(ISO_AWARE)

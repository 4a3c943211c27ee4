"""The raw suites' rules, read from the row contracts (`opsdash_core/contracts.py`).

A contract field says a column's type, whether it may be null, its enumeration (a `Literal`)
and its bounds (`Field(ge=..., le=..., gt=..., lt=..., min_length=...)`); this module turns
those into expectations with `typing.get_args` and the pydantic field info, so a rule is
declared once and a new enum value or a changed bound reaches the suite without a second
edit. What a contract cannot say (uniqueness, references, freshness, volume, distribution
shifts, plausibility caps) is declared next to the suites in `raw_suites.py`.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from data_checks.expectations import (
    Expect,
    between,
    in_set,
    not_before,
    not_future,
    not_null,
    schema,
)
from opsdash_core.contracts import AUDIT_TIMESTAMPS, SourceRow, SqlType, raw_columns

TIMESTAMPTZ = "TIMESTAMP WITH TIME ZONE"

SQL_TYPES: dict[type, str] = {
    bool: "BOOLEAN",
    int: "INTEGER",
    str: "TEXT",
    datetime: TIMESTAMPTZ,
}
"""Python type of a contract field -> its raw column's type as GX reports it (PostgreSQL).
A field marked with `SqlType` (e.g. `BigInt`) overrides this."""

LOAD_COLUMNS: dict[str, str] = {"_ingested_at": TIMESTAMPTZ}
"""Columns the loader adds to every raw row (not part of the source row's contract)."""


@dataclass(frozen=True)
class ContractColumn:
    """One raw column as its contract field describes it. Bounds are inclusive."""

    name: str
    sql_type: str
    nullable: bool
    values: tuple[Any, ...] | None = None
    low: Any = None
    high: Any = None
    min_length: int | None = None


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    """`X | None` -> (X, True); anything else -> (it, False)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"unsupported contract annotation {annotation!r}")
        return rest[0], len(rest) < len(args)
    return annotation, False


def _metadata(annotation: Any, field: FieldInfo) -> tuple[Any, list[Any]]:
    """The bare type and every constraint on it: the field's own (`Field(gt=0)`, `BigInt` at the
    top level) and those inside an `Annotated` nested in an optional (`BigInt | None`)."""
    found = list(field.metadata)
    if get_origin(annotation) is Annotated:
        annotation, *inner = get_args(annotation)
        found.extend(inner)
    return annotation, found


def _bounds(metadata: list[Any], integral: bool) -> tuple[Any, Any, int | None]:
    """Inclusive (low, high, min_length); a strict bound on an integer moves by one."""
    low = high = min_length = None
    step = 1 if integral else 0
    for m in metadata:
        if getattr(m, "ge", None) is not None:
            low = m.ge
        if getattr(m, "gt", None) is not None:
            low = m.gt + step
        if getattr(m, "le", None) is not None:
            high = m.le
        if getattr(m, "lt", None) is not None:
            high = m.lt - step
        if getattr(m, "min_length", None) is not None:
            min_length = m.min_length
    return low, high, min_length


def contract_column(name: str, field: FieldInfo) -> ContractColumn:
    annotation, nullable = _strip_optional(field.annotation)
    bare, metadata = _metadata(annotation, field)
    values: tuple[Any, ...] | None = None
    if get_origin(bare) is Literal:
        values = get_args(bare)
        python_type: type = type(values[0])
    else:
        python_type = bare
    stored = [m for m in metadata if isinstance(m, SqlType)]
    sql_type = stored[-1].name if stored else SQL_TYPES[python_type]
    low, high, min_length = _bounds(metadata, python_type is int)
    return ContractColumn(name, sql_type, nullable, values, low, high, min_length)


def contract_columns(model: type[BaseModel]) -> tuple[ContractColumn, ...]:
    """The contract's columns in raw-table order."""
    fields = model.model_fields
    return tuple(contract_column(name, fields[name]) for name in raw_columns(model))


def column_types(model: type[BaseModel]) -> dict[str, str]:
    """Every column of the raw table and its type: the contract's, then the load's."""
    return {c.name: c.sql_type for c in contract_columns(model)} | LOAD_COLUMNS


def _length_at_least(column: str, length: int) -> Expect:
    return Expect(
        "ExpectColumnValueLengthsToBeBetween",
        {"column": column, "min_value": length},
        f"{column} at least {length} character{'s' if length != 1 else ''}",
    )


def _column_rules(columns: tuple[ContractColumn, ...]) -> Iterator[Expect]:
    yield from not_null(*(c.name for c in columns if not c.nullable))
    for c in columns:
        if c.values is not None:
            yield in_set(c.name, tuple(str(v) for v in c.values))
        if c.low is not None or c.high is not None:
            yield between(c.name, c.low, c.high)
        if c.min_length:
            yield _length_at_least(c.name, c.min_length)


def contract_specs(model: type[BaseModel]) -> list[Expect]:
    """Row-level expectations that restate nothing: each comes from the contract.

    The schema (exact column set and types), not-null for every required field, enumerations,
    bounds, and for every `SourceRow` what its validators enforce on the audit timestamps (not
    in the future, updated_at >= created_at). Validators specific to one contract are code
    that cannot be read back; `raw_suites.py` mirrors those few by hand, next to the contract
    reference.
    """
    columns = contract_columns(model)
    specs = [*schema(column_types(model)), *_column_rules(columns)]
    if issubclass(model, SourceRow):
        created, updated = AUDIT_TIMESTAMPS
        specs += [*not_future(*AUDIT_TIMESTAMPS), not_before(updated, created)]
    return specs

"""The lazily imported Great Expectations API the specs use, imported once per process.

`load_gx_api()` is the only place that imports great_expectations (5-7 s here); every later call
in the same process reuses it, so a Dagster run pays the import once, not once per check.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

_lock = threading.Lock()


@dataclass(frozen=True)
class GxApi:
    """The imported great_expectations module and the two row-condition classes, behind the
    small surface the specs build expectations with (so no spec imports GX itself)."""

    module: ModuleType
    column_cls: type
    and_cls: type

    def expectation(self, type_name: str, **kwargs: Any) -> Any:
        """An expectation by its GX class name, e.g. `ExpectColumnValuesToBeBetween`."""
        return getattr(self.module.expectations, type_name)(**kwargs)

    def column(self, name: str) -> Any:
        return self.column_cls(name)

    def compare(self, column: str, op: str, value: Any) -> Any:
        col = self.column(column)
        match op:
            case "==":
                return col == value
            case "!=":
                return col != value
            case "<":
                return col < value
            case "<=":
                return col <= value
            case ">":
                return col > value
            case ">=":
                return col >= value
            case "in":
                return col.is_in(value)
            case "not in":
                return col.is_not_in(value)
            case "is null":
                return col.is_null()
            case "is not null":
                return col.is_not_null()
        raise ValueError(f"unknown operator {op!r}")

    def all_of(self, parts: Sequence[Any]) -> Any | None:
        """AND of the conditions; None when there are none (GX then reads every row)."""
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return self.and_cls(conditions=list(parts))


@functools.cache
def _load() -> GxApi:
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import AndCondition, Column

    return GxApi(module=gx, column_cls=Column, and_cls=AndCondition)


def load_gx_api() -> GxApi:
    with _lock:
        return _load()

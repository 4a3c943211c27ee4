"""The vocabulary suites are written in: windows, severities and the suite itself, as plain data.

Nothing in `data_checks` imports Great Expectations at module level (it takes ~7 s): a spec
turns itself into GX expectation objects only when the runner hands it a `GxApi` at validation
time. So the Dagster code location can list every suite, its severity and its expectations
without paying for GX.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from opsdash_core import contracts

if TYPE_CHECKING:
    import psycopg

    from data_checks.gx_api import GxApi

CLOCK_SKEW = contracts.CLOCK_SKEW
"""The row contracts' allowance: a timestamp later than now + skew is 'future'."""


class Severity(StrEnum):
    """`error` blocks downstream assets in the same run; `warn` is shown and alerted only."""

    ERROR = "error"
    WARN = "warn"

    @property
    def gx(self) -> str:
        """GX's own severity vocabulary (shown in Data Docs)."""
        return "critical" if self is Severity.ERROR else "warning"


# --- windows: which rows a suite looks at ------------------------------------------------------


@dataclass(frozen=True)
class NewRows:
    """Rows loaded since the previous run of the same check, by a load-time column.

    Every raw load stamps its rows with the loading transaction's `now()` in `_ingested_at`, so
    `(previous check's high-water mark, current max]` is exactly the batches not yet checked.
    """

    column: str = "_ingested_at"


@dataclass(frozen=True)
class WholeTable:
    """Every row: for tables rebuilt from scratch (most marts) and table-level facts."""


@dataclass(frozen=True)
class RecentRows:
    """Rows whose `column` lies within `period` of now (time-series marts)."""

    column: str
    period: timedelta
    as_date: bool = False


@dataclass(frozen=True)
class LoadRun:
    """The rows one load (one Dagster run) sent to raw.quarantine for the suite's table."""


Window = NewRows | WholeTable | RecentRows | LoadRun


@dataclass(frozen=True)
class Bounds:
    """A resolved window: rows with `since < column <= until` (open ends are unbounded)."""

    column: str | None = None
    since: datetime | date | None = None
    until: datetime | date | None = None
    rows: int | None = None
    note: str | None = None

    @property
    def empty(self) -> bool:
        return self.rows == 0

    def describe(self) -> str:
        if self.note:
            return self.note
        if self.column is None:
            return "whole table" if self.rows is None else f"whole table ({self.rows:,} rows)"
        lo = self.since.isoformat() if self.since else "-inf"
        hi = self.until.isoformat() if self.until else "+inf"
        count = "" if self.rows is None else f", {self.rows:,} rows"
        return f"{self.column} in ({lo}, {hi}]{count}"


@dataclass(frozen=True)
class LoadFacts:
    """What one ingestion load reported (its MaterializeResult metadata)."""

    run_id: str
    rows_read: int
    rows_quarantined: int | None = None


@dataclass(frozen=True)
class ValidationContext:
    """Everything known only at validation time, handed to each spec."""

    suite: Suite
    now: datetime
    window: Bounds
    facts: LoadFacts | None = None

    def condition(self, gx: GxApi, extra: Sequence[tuple[str, str, Any]] = ()) -> Any:
        """The GX row condition for the window, AND-ed with `extra` (column, op, value)."""
        parts = []
        w = self.window
        if w.column is not None:
            col = gx.column(w.column)
            if w.since is not None:
                parts.append(col > w.since)
            if w.until is not None:
                parts.append(col <= w.until)
        parts.extend(gx.compare(c, op, v) for c, op, v in extra)
        return gx.all_of(parts)


class Spec(Protocol):
    """One expectation of a suite. `prepare` may query the warehouse for the values the
    expectation needs (trailing averages, a load's row count); `build` returns the GX
    expectation, or None when there is not enough data to judge (the reason goes in
    `prepared["skipped"]`); `sample` fetches a few offending rows after a failure."""

    @property
    def label(self) -> str: ...

    @property
    def column(self) -> str | None: ...

    def prepare(self, conn: psycopg.Connection, ctx: ValidationContext) -> dict[str, Any]: ...

    def build(self, gx: GxApi, ctx: ValidationContext, prepared: dict[str, Any]) -> Any | None: ...

    def sample(
        self, conn: psycopg.Connection, ctx: ValidationContext, result: dict[str, Any], limit: int
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Suite:
    """One GX suite = one Dagster asset check on `asset`, reading `relation`."""

    asset: tuple[str, ...]
    check: str
    relation: tuple[str, str]
    severity: Severity
    window: Window
    specs: tuple[Spec, ...]
    key: tuple[str, ...] = ("id",)
    description: str = ""
    skip_if_no_new_rows: bool = False
    """Skip GX entirely when the window is empty (every expectation would pass vacuously)."""

    @property
    def name(self) -> str:
        """Unique GX suite name, e.g. `raw_sessions__valid_batch`."""
        return "_".join(self.asset) + "__" + self.check

    @property
    def asset_path(self) -> str:
        return "/".join(self.asset)

    @property
    def relation_name(self) -> str:
        return ".".join(self.relation)

    @property
    def blocking(self) -> bool:
        return self.severity is Severity.ERROR

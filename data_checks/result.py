"""What a validation returns: small, typed and JSON-friendly (no GX objects leak out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from data_checks.suite_types import Bounds, Severity


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict. `observed` is GX's observed value (or, for row-level
    expectations, the unexpected count/percent/values); `sample` holds a few offending rows."""

    expectation: str
    label: str
    column: str | None
    success: bool
    observed: Any = None
    unexpected_count: int | None = None
    element_count: int | None = None
    sample: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class CheckResult:
    """One suite run: the Dagster check result and the history rows (which the alert engine
    reads) come from this alone."""

    suite: str
    check: str
    asset: str
    severity: Severity
    success: bool
    outcomes: tuple[ExpectationOutcome, ...]
    window: Bounds
    checked_at: datetime
    seconds: float
    run_id: str | None = None
    skipped: tuple[str, ...] = ()
    data_docs: str | None = None
    key: tuple[str, ...] = ("id",)

    @property
    def failures(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.success)

    @property
    def blocking_failure(self) -> bool:
        return not self.success and self.severity is Severity.ERROR

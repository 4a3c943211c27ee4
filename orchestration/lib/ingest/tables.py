"""The ingested tables: where each comes from, its contract and its cadence.

The row contracts themselves live in the runtime base (`opsdash_core/contracts.py`), where the
quality suites read them too; this module only says where each table is read from and how often.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from opsdash_core import contracts
from opsdash_core.settings import get_settings

# Which scheduled job ingests a table: the incremental cycle (OPSDASH_CYCLE_MINUTES), the
# support-calls job (OPSDASH_SUPPORT_CALLS_MINUTES) or the hourly dimensions job.
Cadence = Literal["cycle", "support_calls", "hourly"]


def cadence_minutes(cadence: Cadence) -> int:
    """Minutes between two ingestions of a table with this cadence, from the settings."""
    settings = get_settings()
    return {
        "cycle": settings.cycle_minutes,
        "support_calls": settings.support_calls_minutes,
        "hourly": 60,
    }[cadence]


PRIORITY_TAG = "dagster/priority"
STEP_PRIORITY: dict[str, int] = {
    "inbound_calls": 4,
    "sessions": 3,
    "customers": 2,
    "tutors": 2,
    "subjects": 2,
    "tutor_subjects": 2,
    "tutor_availabilities": 2,
    "session_requests": 1,
}
"""Which loads a run with steps side by side (the first build, three at a time) starts first,
and so which of their checks: the support API's backfill (the longest, mostly waiting on the
API's rate limit), the sessions (the longest load and check, on the cold build's critical path),
then the dimensions - seconds each, and every history table's reference checks wait for them
(started last at S10, they held the sessions' check 31 s after its load ended) - then the
session requests, which still end before the sessions."""
DIMENSION_CHECK_PRIORITY = 0
"""The dimensions' own checks (one step for the five tables) come after every load: a step takes
~3-5 s to start beside two loads, which at S10, as ten steps, kept the session requests waiting
45 s; the history tables' checks need the session requests loaded anyway."""


def step_tags(table: str, check: bool = False) -> dict[str, str]:
    """Op tags of the load of raw/<table> (or, `check`, of its checks): the step priority."""
    spec = BY_NAME.get(table)
    if spec is None:
        return {}
    if check and spec.cadence == "hourly":
        return {PRIORITY_TAG: str(DIMENSION_CHECK_PRIORITY)}
    return {PRIORITY_TAG: str(STEP_PRIORITY[spec.name])}


@dataclass(frozen=True)
class TableSpec:
    """One raw table. `source` is a marketplace table name, or None for the support API."""

    name: str
    source: str | None
    model: type[contracts.SourceRow]
    columns: tuple[str, ...]
    key: tuple[str, ...]
    cadence: Cadence
    description: str

    @property
    def raw_relation(self) -> str:
        return f"raw.{self.name}"

    @property
    def cadence_minutes(self) -> int:
        return cadence_minutes(self.cadence)


def _table(
    name: str, source: str | None, key: tuple[str, ...], cadence: Cadence, description: str
) -> TableSpec:
    """A raw table with its contract (and so its columns) looked up by name."""
    model = contracts.RAW_CONTRACTS[name]
    return TableSpec(name, source, model, contracts.raw_columns(model), key, cadence, description)


TABLES: tuple[TableSpec, ...] = (
    _table(
        "customers",
        "customers",
        ("id",),
        "hourly",
        "Marketplace customers (students/parents), one row per customer, soft deletes kept.",
    ),
    _table(
        "tutors",
        "tutors",
        ("id",),
        "hourly",
        "Tutors, one row per tutor.",
    ),
    _table(
        "subjects",
        "subjects",
        ("id",),
        "hourly",
        "Subjects taught on the marketplace, one row per subject.",
    ),
    _table(
        "tutor_subjects",
        "tutor_subjects",
        ("id",),
        "hourly",
        "Which tutor teaches which subject, one row per pair.",
    ),
    _table(
        "tutor_availabilities",
        "tutor_availabilities",
        ("id",),
        "hourly",
        "Weekly recurring availability blocks (UTC hours), one row per block.",
    ),
    _table(
        "session_requests",
        "session_requests",
        ("id",),
        "cycle",
        "Customers' requests for a session (demand), one row per request.",
    ),
    _table(
        "sessions",
        "tutoring_sessions",
        ("id", "created_at"),
        "cycle",
        "Tutoring sessions with status, rating and who cancelled, one row per session.",
    ),
    _table(
        "inbound_calls",
        None,
        ("id", "created_at"),
        "support_calls",
        "Inbound support contacts from the support API, one row per call.",
    ),
)

BY_NAME = {t.name: t for t in TABLES}

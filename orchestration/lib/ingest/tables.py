"""The ingested tables: where each comes from, its contract and its cadence.

The row contracts themselves live in the runtime base (`opsdash_core/contracts.py`), where the
quality suites read them too; this module only says where each table is read from and how often.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsdash_core import contracts


@dataclass(frozen=True)
class TableSpec:
    """One raw table. `source` is a marketplace table name, or None for the support API."""

    name: str
    source: str | None
    model: type[contracts.SourceRow]
    columns: tuple[str, ...]
    key: tuple[str, ...]
    cadence_minutes: int
    description: str

    @property
    def raw_relation(self) -> str:
        return f"raw.{self.name}"


def _table(
    name: str, source: str | None, key: tuple[str, ...], cadence_minutes: int, description: str
) -> TableSpec:
    """A raw table with its contract (and so its columns) looked up by name."""
    model = contracts.RAW_CONTRACTS[name]
    return TableSpec(
        name, source, model, contracts.raw_columns(model), key, cadence_minutes, description
    )


TABLES: tuple[TableSpec, ...] = (
    _table(
        "customers",
        "customers",
        ("id",),
        60,
        "Marketplace customers (students/parents), one row per customer, soft deletes kept.",
    ),
    _table(
        "tutors",
        "tutors",
        ("id",),
        60,
        "Tutors, one row per tutor.",
    ),
    _table(
        "subjects",
        "subjects",
        ("id",),
        60,
        "Subjects taught on the marketplace, one row per subject.",
    ),
    _table(
        "tutor_subjects",
        "tutor_subjects",
        ("id",),
        60,
        "Which tutor teaches which subject, one row per pair.",
    ),
    _table(
        "tutor_availabilities",
        "tutor_availabilities",
        ("id",),
        60,
        "Weekly recurring availability blocks (UTC hours), one row per block.",
    ),
    _table(
        "session_requests",
        "session_requests",
        ("id",),
        5,
        "Customers' requests for a session (demand), one row per request.",
    ),
    _table(
        "sessions",
        "tutoring_sessions",
        ("id", "created_at"),
        5,
        "Tutoring sessions with status, rating and who cancelled, one row per session.",
    ),
    _table(
        "inbound_calls",
        None,
        ("id", "created_at"),
        15,
        "Inbound support contacts from the support API, one row per call.",
    ),
)

BY_NAME = {t.name: t for t in TABLES}

"""The ingested tables: where each comes from, its contract and its cadence."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from orchestration.lib.ingest import records


@dataclass(frozen=True)
class TableSpec:
    """One raw table. `source` is a marketplace table name, or None for the support API."""

    name: str
    source: str | None
    model: type[BaseModel]
    columns: tuple[str, ...]
    key: tuple[str, ...]
    cadence_minutes: int
    description: str

    @property
    def raw_relation(self) -> str:
        return f"raw.{self.name}"


def _cols(model: type[BaseModel]) -> tuple[str, ...]:
    base = ("id",)
    rest = tuple(c for c in model.model_fields if c not in ("id", "created_at", "updated_at"))
    return (*base, *rest, "created_at", "updated_at")


TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "customers",
        "customers",
        records.Customer,
        _cols(records.Customer),
        ("id",),
        60,
        "Marketplace customers (students/parents), one row per customer, soft deletes kept.",
    ),
    TableSpec(
        "tutors",
        "tutors",
        records.Tutor,
        _cols(records.Tutor),
        ("id",),
        60,
        "Tutors, one row per tutor.",
    ),
    TableSpec(
        "subjects",
        "subjects",
        records.Subject,
        _cols(records.Subject),
        ("id",),
        60,
        "Subjects taught on the marketplace, one row per subject.",
    ),
    TableSpec(
        "tutor_subjects",
        "tutor_subjects",
        records.TutorSubject,
        _cols(records.TutorSubject),
        ("id",),
        60,
        "Which tutor teaches which subject, one row per pair.",
    ),
    TableSpec(
        "tutor_availabilities",
        "tutor_availabilities",
        records.TutorAvailability,
        _cols(records.TutorAvailability),
        ("id",),
        60,
        "Weekly recurring availability blocks (UTC hours), one row per block.",
    ),
    TableSpec(
        "session_requests",
        "session_requests",
        records.SessionRequest,
        _cols(records.SessionRequest),
        ("id",),
        5,
        "Customers' requests for a session (demand), one row per request.",
    ),
    TableSpec(
        "sessions",
        "tutoring_sessions",
        records.Session,
        _cols(records.Session),
        ("id", "created_at"),
        5,
        "Tutoring sessions with status, rating and who cancelled, one row per session.",
    ),
    TableSpec(
        "inbound_calls",
        None,
        records.InboundCall,
        _cols(records.InboundCall),
        ("id", "created_at"),
        15,
        "Inbound support contacts from the support API, one row per call.",
    ),
)

BY_NAME = {t.name: t for t in TABLES}

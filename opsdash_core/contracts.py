"""The raw row contracts: what a valid source row of every ingested table looks like.

Declared once, here, and read by every layer that needs the rule:
- ingestion validates every source row against its contract; a row that fails is quarantined
  with the validation message as the reason, it never reaches raw.* and never vanishes
  (`orchestration/lib/ingest/validate.py`). Batches are checked whole by these models compiled
  to polars expressions (`orchestration/lib/ingest/vectorized.py`, with the same messages); a
  new validator here needs its vectorized twin there, or ingestion refuses to compile it;
- the raw tables hold exactly the contract's columns, in `raw_columns` order, plus the load's
  `_ingested_at` stamp;
- the Great Expectations raw suites derive their columns, types, nullability, ranges and
  enumerations from the fields below (`data_checks/contract_rules.py`), so adding a value to
  a `Literal` here changes the suite too.

Timestamps may not lie in the future beyond a small clock-skew allowance (passed in the
validation context as `now`). This module imports nothing of the project (runtime base).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

CLOCK_SKEW = timedelta(minutes=5)

AUDIT_TIMESTAMPS = ("created_at", "updated_at")
"""Every row's Rails timestamps: time-zone aware, not in the future, updated >= created."""


@dataclass(frozen=True)
class SqlType:
    """How the warehouse stores a field when its Python type alone does not say so.

    Plain `int` fields are 32-bit `integer` columns; row ids and references are `bigint`.
    """

    name: str


BigInt = Annotated[int, SqlType("BIGINT")]
"""A row id or a reference to one (bigint in the warehouse)."""

CustomerStatus = Literal["active", "paused", "cancelled"]
TutorStatus = Literal["active", "inactive", "onboarding", "suspended"]
RequestStatus = Literal["pending", "matched", "unfilled", "cancelled"]
SessionStatus = Literal["scheduled", "completed", "cancelled", "no_show"]
Party = Literal["customer", "tutor"]
ReasonCode = Literal[
    "billing", "scheduling", "tutor_quality", "technical", "cancellation_request", "other"
]


class SourceRow(BaseModel):
    """Common to every Rails-style row: bigint id and sane created/updated timestamps."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: BigInt = Field(gt=0)
    created_at: datetime
    updated_at: datetime

    @field_validator(*AUDIT_TIMESTAMPS)
    @classmethod
    def _aware_and_not_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp has no time zone")
        now = (info.context or {}).get("now")
        if now is not None and value > now + CLOCK_SKEW:
            raise ValueError(f"{info.field_name} {value.isoformat()} is in the future")
        return value

    @model_validator(mode="after")
    def _updated_after_created(self) -> SourceRow:
        if self.updated_at < self.created_at:
            raise ValueError("updated_at is before created_at")
        return self


class Customer(SourceRow):
    email: str | None = None
    full_name: str | None = None
    grade_level: int | None = Field(default=None, ge=0, le=16)
    goal: str | None = None
    goal_progress_pct: int | None = Field(default=None, ge=0, le=100)
    acquisition_channel: str | None = None
    status: CustomerStatus
    signed_up_at: datetime | None = None
    deleted_at: datetime | None = None


class Tutor(SourceRow):
    email: str | None = None
    full_name: str | None = None
    status: TutorStatus
    hourly_rate_cents: int | None = Field(default=None, ge=0)
    hired_at: datetime | None = None
    deleted_at: datetime | None = None


class Subject(SourceRow):
    name: str = Field(min_length=1)
    category: str = Field(min_length=1)


class TutorSubject(SourceRow):
    tutor_id: BigInt = Field(gt=0)
    subject_id: BigInt = Field(gt=0)


class TutorAvailability(SourceRow):
    tutor_id: BigInt = Field(gt=0)
    day_of_week: int = Field(ge=0, le=6)
    start_hour: int = Field(ge=0, le=23)
    end_hour: int = Field(ge=1, le=24)

    @model_validator(mode="after")
    def _window(self) -> TutorAvailability:
        if self.end_hour <= self.start_hour:
            raise ValueError("end_hour must be after start_hour")
        return self


class SessionRequest(SourceRow):
    customer_id: BigInt = Field(gt=0)
    subject_id: BigInt = Field(gt=0)
    requested_start_at: datetime
    status: RequestStatus
    tutoring_session_id: BigInt | None = None


class Session(SourceRow):
    customer_id: BigInt = Field(gt=0)
    tutor_id: BigInt = Field(gt=0)
    subject_id: BigInt = Field(gt=0)
    session_request_id: BigInt | None = None
    scheduled_at: datetime
    duration_minutes: int = Field(gt=0, le=480)
    status: SessionStatus
    cancelled_by: Party | None = None
    no_show_by: Party | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    is_first_session: bool

    @model_validator(mode="after")
    def _status_fields(self) -> Session:
        if self.rating is not None and self.status != "completed":
            raise ValueError(f"rating on a {self.status} session")
        return self


class InboundCall(SourceRow):
    customer_id: BigInt = Field(gt=0)
    reason_code: ReasonCode
    channel: str | None = None
    duration_seconds: int | None = Field(default=None, ge=0)
    resolved: bool | None = None
    called_at: datetime


RAW_CONTRACTS: dict[str, type[SourceRow]] = {
    "customers": Customer,
    "tutors": Tutor,
    "subjects": Subject,
    "tutor_subjects": TutorSubject,
    "tutor_availabilities": TutorAvailability,
    "session_requests": SessionRequest,
    "sessions": Session,
    "inbound_calls": InboundCall,
}
"""Each raw table's contract, by table name (raw.<name>)."""


def raw_columns(model: type[BaseModel]) -> tuple[str, ...]:
    """The raw table's columns in load order: id, the table's own fields, then the audit
    timestamps (the loader writes them in this order; `_ingested_at` is added by the load)."""
    own = tuple(c for c in model.model_fields if c != "id" and c not in AUDIT_TIMESTAMPS)
    return ("id", *own, *AUDIT_TIMESTAMPS)

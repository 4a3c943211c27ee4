"""Row contracts for every ingested table: what a valid source row looks like.

A row that fails its contract is quarantined with the validation message as the reason; it
never reaches raw.* and never vanishes. Timestamps may not lie in the future beyond a small
clock-skew allowance (passed in the validation context as `now`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

CLOCK_SKEW = timedelta(minutes=5)

SessionStatus = Literal["scheduled", "completed", "cancelled", "no_show"]
Party = Literal["customer", "tutor"]
ReasonCode = Literal[
    "billing", "scheduling", "tutor_quality", "technical", "cancellation_request", "other"
]


class SourceRow(BaseModel):
    """Common to every Rails-style row: bigint id and sane created/updated timestamps."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: int = Field(gt=0)
    created_at: datetime
    updated_at: datetime

    @field_validator("created_at", "updated_at")
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
    status: Literal["active", "paused", "cancelled"]
    signed_up_at: datetime | None = None
    deleted_at: datetime | None = None


class Tutor(SourceRow):
    email: str | None = None
    full_name: str | None = None
    status: Literal["active", "inactive", "onboarding", "suspended"]
    hourly_rate_cents: int | None = Field(default=None, ge=0)
    hired_at: datetime | None = None
    deleted_at: datetime | None = None


class Subject(SourceRow):
    name: str = Field(min_length=1)
    category: str = Field(min_length=1)


class TutorSubject(SourceRow):
    tutor_id: int = Field(gt=0)
    subject_id: int = Field(gt=0)


class TutorAvailability(SourceRow):
    tutor_id: int = Field(gt=0)
    day_of_week: int = Field(ge=0, le=6)
    start_hour: int = Field(ge=0, le=23)
    end_hour: int = Field(ge=1, le=24)

    @model_validator(mode="after")
    def _window(self) -> TutorAvailability:
        if self.end_hour <= self.start_hour:
            raise ValueError("end_hour must be after start_hour")
        return self


class SessionRequest(SourceRow):
    customer_id: int = Field(gt=0)
    subject_id: int = Field(gt=0)
    requested_start_at: datetime
    status: Literal["pending", "matched", "unfilled", "cancelled"]
    tutoring_session_id: int | None = None


class Session(SourceRow):
    customer_id: int = Field(gt=0)
    tutor_id: int = Field(gt=0)
    subject_id: int = Field(gt=0)
    session_request_id: int | None = None
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
    customer_id: int = Field(gt=0)
    reason_code: ReasonCode
    channel: str | None = None
    duration_seconds: int | None = Field(default=None, ge=0)
    resolved: bool | None = None
    called_at: datetime

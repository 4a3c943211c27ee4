"""Suites of the raw tables: three per `raw/<table>` asset.

- `valid_batch` (error, blocking): the rows loaded since the previous check -- schema and
  types, not-null keys, uniqueness, enumerations, ranges, timestamps not in the future and
  referential integrity.
- `quarantine_rate` (error, blocking): the share of the load's rows the row contracts rejected.
- `trends` (warn): freshness, volume against the trailing 7-day average, distribution shifts,
  enumerations that may legitimately grow (channels).

Row-level problems are quarantined at ingestion (orchestration/lib/ingest/records.py); the
row-level expectations here repeat the same rules as a second line of defence, while the
set-level ones catch what no single row shows.
"""

from __future__ import annotations

from datetime import timedelta

from data_checks.expectations import (
    Expect,
    between,
    in_set,
    not_before,
    not_future,
    not_null,
    null_unless,
    schema,
)
from data_checks.integrity import References, UniqueAcrossLoads, unique, unique_together
from data_checks.quarantine import QuarantineRate
from data_checks.spec import LoadRun, NewRows, Severity, Spec, Suite, WholeTable
from data_checks.trends import CategoryShift, Freshness, MeanShift, Volume

TS = "TIMESTAMP WITH TIME ZONE"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

SESSION_STATUSES = ("scheduled", "completed", "cancelled", "no_show")
PARTIES = ("customer", "tutor")
REASON_CODES = (
    "billing",
    "scheduling",
    "tutor_quality",
    "technical",
    "cancellation_request",
    "other",
)
CUSTOMER_STATUSES = ("active", "paused", "cancelled")
TUTOR_STATUSES = ("active", "inactive", "onboarding", "suspended")
REQUEST_STATUSES = ("pending", "matched", "unfilled", "cancelled")
CALL_CHANNELS = ("phone", "chat", "email")
ACQUISITION_CHANNELS = (
    "organic_search",
    "paid_search",
    "social",
    "referral",
    "school_partnership",
    "direct",
)

AUDIT = {"created_at": TS, "updated_at": TS, "_ingested_at": TS}

RAW_SCHEMAS: dict[str, dict[str, str]] = {
    "customers": {
        "id": "BIGINT",
        "email": "TEXT",
        "full_name": "TEXT",
        "grade_level": "INTEGER",
        "goal": "TEXT",
        "goal_progress_pct": "INTEGER",
        "acquisition_channel": "TEXT",
        "status": "TEXT",
        "signed_up_at": TS,
        "deleted_at": TS,
        **AUDIT,
    },
    "tutors": {
        "id": "BIGINT",
        "email": "TEXT",
        "full_name": "TEXT",
        "status": "TEXT",
        "hourly_rate_cents": "INTEGER",
        "hired_at": TS,
        "deleted_at": TS,
        **AUDIT,
    },
    "subjects": {"id": "BIGINT", "name": "TEXT", "category": "TEXT", **AUDIT},
    "tutor_subjects": {"id": "BIGINT", "tutor_id": "BIGINT", "subject_id": "BIGINT", **AUDIT},
    "tutor_availabilities": {
        "id": "BIGINT",
        "tutor_id": "BIGINT",
        "day_of_week": "INTEGER",
        "start_hour": "INTEGER",
        "end_hour": "INTEGER",
        **AUDIT,
    },
    "session_requests": {
        "id": "BIGINT",
        "customer_id": "BIGINT",
        "subject_id": "BIGINT",
        "requested_start_at": TS,
        "status": "TEXT",
        "tutoring_session_id": "BIGINT",
        **AUDIT,
    },
    "sessions": {
        "id": "BIGINT",
        "customer_id": "BIGINT",
        "tutor_id": "BIGINT",
        "subject_id": "BIGINT",
        "session_request_id": "BIGINT",
        "scheduled_at": TS,
        "duration_minutes": "INTEGER",
        "status": "TEXT",
        "cancelled_by": "TEXT",
        "no_show_by": "TEXT",
        "rating": "INTEGER",
        "is_first_session": "BOOLEAN",
        **AUDIT,
    },
    "inbound_calls": {
        "id": "BIGINT",
        "customer_id": "BIGINT",
        "reason_code": "TEXT",
        "channel": "TEXT",
        "duration_seconds": "INTEGER",
        "resolved": "BOOLEAN",
        "called_at": TS,
        **AUDIT,
    },
}

COMPLETED = (("status", "==", "completed"),)
NOT_COMPLETED = (("status", "!=", "completed"),)


def _customer(column: str = "customer_id") -> References:
    # New customers sign up and book within the hour; customers load hourly.
    return References(column, ("raw", "customers"), judged_after_load_of="customers")


def _subject(column: str = "subject_id") -> References:
    return References(column, ("raw", "subjects"), judged_after_load_of="subjects")


def _tutor(column: str = "tutor_id", *, strict: bool = False) -> References:
    return References(column, ("raw", "tutors"), judged_after_load_of=None if strict else "tutors")


ROW_RULES: dict[str, list[Spec]] = {
    "customers": [
        *not_null("id", "status", "created_at", "updated_at"),
        unique("id"),
        in_set("status", CUSTOMER_STATUSES),
        between("grade_level", 0, 16),
        between("goal_progress_pct", 0, 100),
        *not_future("created_at", "updated_at", "signed_up_at"),
        not_before("updated_at", "created_at"),
    ],
    "tutors": [
        *not_null("id", "status", "created_at", "updated_at"),
        unique("id"),
        in_set("status", TUTOR_STATUSES),
        between("hourly_rate_cents", 0, 100_000),
        *not_future("created_at", "updated_at", "hired_at"),
        not_before("updated_at", "created_at"),
    ],
    "subjects": [
        *not_null("id", "name", "category", "created_at", "updated_at"),
        unique("id"),
        unique("name"),
        *not_future("created_at", "updated_at"),
    ],
    "tutor_subjects": [
        *not_null("id", "tutor_id", "subject_id", "created_at", "updated_at"),
        unique("id"),
        unique_together("tutor_id", "subject_id"),
        _tutor(),
        _subject(),
        *not_future("created_at", "updated_at"),
    ],
    "tutor_availabilities": [
        *not_null("id", "tutor_id", "day_of_week", "start_hour", "end_hour"),
        unique("id"),
        between("day_of_week", 0, 6),
        between("start_hour", 0, 23),
        between("end_hour", 1, 24),
        not_before("end_hour", "start_hour"),
        _tutor(),
        *not_future("created_at", "updated_at"),
    ],
    "session_requests": [
        *not_null("id", "customer_id", "subject_id", "requested_start_at", "status"),
        unique("id"),
        in_set("status", REQUEST_STATUSES),
        _customer(),
        _subject(),
        *not_future("created_at", "updated_at"),
        not_before("updated_at", "created_at"),
    ],
    "sessions": [
        *not_null(
            "id",
            "customer_id",
            "tutor_id",
            "subject_id",
            "scheduled_at",
            "duration_minutes",
            "status",
            "is_first_session",
        ),
        unique("id"),
        UniqueAcrossLoads("id", "created_at"),
        in_set("status", SESSION_STATUSES),
        in_set("cancelled_by", PARTIES),
        in_set("no_show_by", PARTIES),
        between("rating", 1, 5),
        between("duration_minutes", 1, 480),
        null_unless("rating", NOT_COMPLETED, "only completed sessions are rated"),
        # Sessions for tutors that do not exist are what a bad deploy produces (issue 4):
        # strict, so the cycle that loads them fails at once.
        _tutor(strict=True),
        _customer(),
        _subject(),
        *not_future("created_at", "updated_at"),
        *not_future("scheduled_at", where=COMPLETED),
        not_before("updated_at", "created_at"),
    ],
    "inbound_calls": [
        *not_null("id", "customer_id", "reason_code", "called_at"),
        unique("id"),
        UniqueAcrossLoads("id", "created_at"),
        in_set("reason_code", REASON_CODES),
        between("duration_seconds", 0, 86_400),
        _customer(),
        *not_future("called_at", "created_at", "updated_at"),
        not_before("updated_at", "created_at"),
    ],
}

TREND_RULES: dict[str, list[Spec]] = {
    "customers": [
        Freshness("updated_at", 3 * DAY),
        in_set("acquisition_channel", ACQUISITION_CHANNELS),
    ],
    "session_requests": [
        Freshness("updated_at", 2 * HOUR),
        Volume("created_at"),
        CategoryShift("status", "updated_at"),
    ],
    "sessions": [
        Freshness("updated_at", 2 * HOUR),
        Volume("created_at"),
        MeanShift("rating", "updated_at", tolerance=0.4),
        CategoryShift("status", "updated_at"),
    ],
    "inbound_calls": [
        Freshness("updated_at", 6 * HOUR),
        Volume("created_at"),
        CategoryShift("reason_code", "created_at"),
        in_set("channel", CALL_CHANNELS),
    ],
}


def raw_suites(table: str) -> list[Suite]:
    asset = ("raw", table)
    key = ("id", "created_at") if table in ("sessions", "inbound_calls") else ("id",)
    suites = [
        Suite(
            asset,
            "valid_batch",
            asset,
            Severity.ERROR,
            NewRows(),
            (*schema(RAW_SCHEMAS[table]), *ROW_RULES[table]),
            key=key,
            description=f"Rows of raw.{table} loaded since the last check: schema, keys, "
            "enumerations, ranges, no future timestamps, referential integrity.",
            skip_if_no_new_rows=True,
        ),
        Suite(
            asset,
            "quarantine_rate",
            ("raw", "quarantine"),
            Severity.ERROR,
            LoadRun(),
            (QuarantineRate(table),),
            description=f"Share of the last load's raw.{table} rows rejected by the row "
            "contracts (raw.quarantine by run id).",
        ),
    ]
    if table in TREND_RULES:
        window = (
            NewRows() if any(isinstance(s, Expect) for s in TREND_RULES[table]) else WholeTable()
        )
        suites.append(
            Suite(
                asset,
                "trends",
                asset,
                Severity.WARN,
                window,
                tuple(TREND_RULES[table]),
                key=key,
                description=f"raw.{table} as a whole: freshness, volume against the trailing "
                "7-day average, distribution shifts, open-ended enumerations.",
            )
        )
    return suites


RAW_TABLES = tuple(RAW_SCHEMAS)
RAW_SUITES: list[Suite] = [s for t in RAW_TABLES for s in raw_suites(t)]

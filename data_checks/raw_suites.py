"""Suites of the raw tables: three per `raw/<table>` asset.

- `valid_batch` (error, blocking): the rows loaded since the previous check -- the row
  contract (schema and types, not-null, enumerations, ranges, audit timestamps), then what a
  contract cannot say: uniqueness, referential integrity, plausibility caps, business
  timestamps not in the future.
- `quarantine_rate` (error, blocking): the share of the load's rows the row contracts rejected.
- `trends` (warn): freshness, volume against the trailing 7-day average, distribution shifts,
  enumerations that may legitimately grow (channels).

Row-level problems are quarantined at ingestion against the row contracts
(`opsdash_core/contracts.py`). The contract's rules reach `valid_batch` through
`contract_rules.py` (read from the pydantic fields, never restated here) as a second line of
defence on what actually landed in raw.*; the set-level rules below catch what no single row
shows. See `data_checks/README.md` for which layer owns which check.
"""

from __future__ import annotations

from datetime import timedelta

from data_checks.contract_rules import contract_specs
from data_checks.expectations import Expect, between, in_set, not_before, not_future, null_unless
from data_checks.integrity import References, UniqueAcrossLoads, unique, unique_together
from data_checks.quarantine import QuarantineRate
from data_checks.suite_types import LoadRun, NewRows, Severity, Spec, Suite, WholeTable
from data_checks.trends import CategoryShift, Freshness, MeanShift, Volume
from opsdash_core.contracts import RAW_CONTRACTS

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

# Open-ended enumerations: new values are legitimate (a new marketing channel), so they are not
# in the row contract and only warn, in `trends`.
CALL_CHANNELS = ("phone", "chat", "email")
ACQUISITION_CHANNELS = (
    "organic_search",
    "paid_search",
    "social",
    "referral",
    "school_partnership",
    "direct",
)

COMPLETED = (("status", "==", "completed"),)
NOT_COMPLETED = (("status", "!=", "completed"),)


def _customer(column: str = "customer_id") -> References:
    # New customers sign up and book within the hour; customers load hourly.
    return References(column, ("raw", "customers"), judged_after_load_of="customers")


def _subject(column: str = "subject_id") -> References:
    return References(column, ("raw", "subjects"), judged_after_load_of="subjects")


def _tutor(column: str = "tutor_id", *, strict: bool = False) -> References:
    return References(column, ("raw", "tutors"), judged_after_load_of=None if strict else "tutors")


# What the contract cannot say, per table: keys and references, plausibility caps the contract
# does not enforce, business timestamps not in the future, and the few validators of one
# contract (code, not introspectable), mirrored by hand and marked so.
ROW_RULES: dict[str, list[Spec]] = {
    "customers": [
        unique("id"),
        *not_future("signed_up_at"),
    ],
    "tutors": [
        unique("id"),
        between("hourly_rate_cents", high=100_000, why="hourly_rate_cents at most 100000"),
        *not_future("hired_at"),
    ],
    "subjects": [
        unique("id"),
        unique("name"),
    ],
    "tutor_subjects": [
        unique("id"),
        unique_together("tutor_id", "subject_id"),
        _tutor(),
        _subject(),
    ],
    "tutor_availabilities": [
        unique("id"),
        not_before("end_hour", "start_hour"),  # mirrors TutorAvailability._window
        _tutor(),
    ],
    "session_requests": [
        unique("id"),
        _customer(),
        _subject(),
    ],
    "sessions": [
        unique("id"),
        UniqueAcrossLoads("id", "created_at"),
        # mirrors the contract validator Session._status_fields
        null_unless("rating", NOT_COMPLETED, "only completed sessions are rated"),
        # Sessions for tutors that do not exist are what a bad deploy produces (issue 4):
        # strict, so the cycle that loads them fails at once.
        _tutor(strict=True),
        _customer(),
        _subject(),
        *not_future("scheduled_at", where=COMPLETED),
    ],
    "inbound_calls": [
        unique("id"),
        UniqueAcrossLoads("id", "created_at"),
        between("duration_seconds", high=86_400, why="duration_seconds at most 86400 (a day)"),
        _customer(),
        *not_future("called_at"),
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
    """The suites of raw.<table>, built from its row contract as it stands now."""
    asset = ("raw", table)
    key = ("id", "created_at") if table in ("sessions", "inbound_calls") else ("id",)
    suites = [
        Suite(
            asset,
            "valid_batch",
            asset,
            Severity.ERROR,
            NewRows(),
            (*contract_specs(RAW_CONTRACTS[table]), *ROW_RULES[table]),
            key=key,
            description=f"Rows of raw.{table} loaded since the last check: the row contract "
            "(schema, not-null, enumerations, ranges, no future timestamps), keys, "
            "referential integrity.",
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


def all_raw_suites() -> list[Suite]:
    return [s for t in RAW_CONTRACTS for s in raw_suites(t)]


RAW_TABLES = tuple(RAW_CONTRACTS)
RAW_SUITES: list[Suite] = all_raw_suites()

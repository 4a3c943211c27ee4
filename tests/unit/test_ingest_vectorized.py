"""The vectorized validator against the pydantic contract it replaced: thousands of good and
mutated rows of every raw table, the same rows accepted, the same rows quarantined with the
same reason text and payload (so the same quarantine key), the same watermark candidate."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from pydantic import BaseModel, Field, model_validator

from opsdash_core import contracts
from orchestration.lib.ingest import vectorized as vec
from orchestration.lib.ingest.tables import BY_NAME, TABLES, TableSpec
from orchestration.lib.ingest.validate import (
    Batch,
    reference_split_rows,
    split_frame,
    split_rows,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")

GOOD: dict[str, dict[str, Any]] = {
    "customers": {
        "email": "a@example.com",
        "full_name": "Ada",
        "grade_level": 7,
        "goal": "algebra",
        "goal_progress_pct": 40,
        "acquisition_channel": "search",
        "status": "active",
        "signed_up_at": NOW - timedelta(days=90),
        "deleted_at": None,
    },
    "tutors": {
        "email": "t@example.com",
        "full_name": "Tom",
        "status": "onboarding",
        "hourly_rate_cents": 4500,
        "hired_at": NOW - timedelta(days=200),
        "deleted_at": None,
    },
    "subjects": {"name": "Algebra", "category": "math"},
    "tutor_subjects": {"tutor_id": 4, "subject_id": 2},
    "tutor_availabilities": {"tutor_id": 4, "day_of_week": 3, "start_hour": 9, "end_hour": 12},
    "session_requests": {
        "customer_id": 10,
        "subject_id": 2,
        "requested_start_at": NOW + timedelta(days=2),
        "status": "pending",
        "tutoring_session_id": None,
    },
    "sessions": {
        "customer_id": 10,
        "tutor_id": 20,
        "subject_id": 3,
        "session_request_id": 5,
        "scheduled_at": NOW - timedelta(hours=2),
        "duration_minutes": 60,
        "status": "completed",
        "cancelled_by": None,
        "no_show_by": None,
        "rating": 5,
        "is_first_session": False,
    },
    "inbound_calls": {
        "customer_id": 3,
        "reason_code": "billing",
        "channel": "phone",
        "duration_seconds": 60,
        "resolved": True,
        "called_at": NOW - timedelta(hours=3),
    },
}


def good_row(table: str, i: int, rng: random.Random) -> dict[str, Any]:
    created = NOW - timedelta(days=rng.randint(1, 300), microseconds=rng.randint(0, 999_999))
    row = {"id": i, **GOOD[table]}
    row["created_at"] = created
    row["updated_at"] = created + timedelta(seconds=rng.randint(0, 86_400))
    return row


# Values of every shape a source or an API may send: edges of each bound, wrong types that
# pydantic coerces (or not), timestamps in every form, missing keys.
ODD_VALUES: list[Any] = [
    None,
    0,
    -1,
    1,
    5,
    6,
    7,
    16,
    17,
    23,
    24,
    100,
    101,
    480,
    481,
    2**40,
    2**62,
    "",
    "x",
    "5",
    "7.0",
    "active",
    "paused",
    "cancelled",
    "completed",
    "no_show",
    "scheduled",
    "customer",
    "tutor",
    "billing",
    "aliens",
    5.0,
    5.5,
    True,
    False,
    [1],
    {"a": 1},
]


def timestamp_values(rng: random.Random) -> list[Any]:
    future = NOW + timedelta(days=1, seconds=rng.randint(0, 3600))
    skewed = NOW + timedelta(minutes=4)
    past = NOW - timedelta(days=400)
    return [
        future,
        future.astimezone(BERLIN),
        skewed,
        NOW + timedelta(minutes=6),
        past,
        past.replace(tzinfo=None),
        past.isoformat(),
        future.isoformat(),
        future.isoformat().replace("+00:00", "Z"),
        past.astimezone(timezone(timedelta(hours=-7))).isoformat(),
        future.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(),
        past.strftime("%Y-%m-%d %H:%M:%S+00:00"),
        past.strftime("%Y-%m-%dT%H:%M:%S"),
        "2026-02-30T10:00:00+00:00",
        "yesterday",
        1_700_000_000,
    ]


def mutate(row: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One to three fields of a good row set to something else, or dropped."""
    out = dict(row)
    for name in rng.sample(sorted(row), rng.randint(1, 3)):
        roll = rng.random()
        if roll < 0.08:
            del out[name]
        elif name.endswith("_at") and roll < 0.7:
            out[name] = rng.choice(timestamp_values(rng))
        else:
            out[name] = rng.choice(ODD_VALUES)
    if rng.random() < 0.1:
        out["unexpected_extra"] = "kept in the payload"
    return out


def cross_field(table: str, row: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A row breaking only a rule between fields (updated before created, the table's own)."""
    out = dict(row)
    pick = rng.random()
    if pick < 0.4:
        out["updated_at"] = out["created_at"] - timedelta(seconds=rng.randint(1, 99))
    elif table == "tutor_availabilities":
        out["end_hour"] = out["start_hour"] - rng.randint(0, 2)
    elif table == "sessions":
        out["status"] = rng.choice(["cancelled", "no_show", "scheduled"])
        if pick > 0.8:
            out["updated_at"] = out["created_at"] - timedelta(seconds=1)
    return out


def generated(table: str, n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(1, n + 1):
        row = good_row(table, i, rng)
        roll = rng.random()
        if roll < 0.45:
            row = mutate(row, rng)
        elif roll < 0.6:
            row = cross_field(table, row, rng)
        rows.append(row)
    return rows


def verdict(batch: Batch) -> tuple[list[tuple[str, str, str]], list[tuple[Any, ...]], Any]:
    rejected = [(r.source_key, r.reason, r.payload_hash) for r in batch.rejected]
    return rejected, sorted(batch.valid, key=repr), batch.max_updated_at


@pytest.mark.parametrize("spec", TABLES, ids=lambda s: s.name)
def test_python_rows_get_the_reference_verdict(spec: TableSpec) -> None:
    rows = generated(spec.name, 1_500, seed=len(spec.name))
    fast = split_rows(spec, rows, NOW)
    ref = reference_split_rows(spec, rows, NOW)
    assert verdict(fast) == verdict(ref)
    # The mutations reach both outcomes and the vectorized path decides most rows itself.
    assert 0.2 < len(ref.rejected) / len(rows) < 0.8
    _frame, odd = vec.frame_from_rows(vec.compile_contract(spec.model), rows)
    assert len(odd) < len(rows) / 2


def typed_rows(table: str, n: int, seed: int) -> list[dict[str, Any]]:
    """Rows as psycopg returns them from the typed source tables: right types, any values."""
    rng = random.Random(seed)
    plan = vec.compile_contract(contracts.RAW_CONTRACTS[table])
    rows = []
    for i in range(1, n + 1):
        row = good_row(table, i, rng)
        if rng.random() < 0.5:
            row = cross_field(table, row, rng)
        for rule in plan.fields:
            if rng.random() > 0.12:
                continue
            if rule.kind == "int":
                row[rule.name] = rng.choice([None, -1, 0, 1, 5, 6, 7, 24, 101, 481, 2**40])
            elif rule.kind in ("str", "literal"):
                row[rule.name] = rng.choice([None, "", "x", "active", "completed", "tutor"])
            elif rule.kind == "bool":
                row[rule.name] = rng.choice([None, True, False])
            else:
                row[rule.name] = rng.choice([None, NOW + timedelta(days=3), NOW - timedelta(1)])
        for name, value in row.items():
            if isinstance(value, datetime):
                row[name] = value.astimezone(BERLIN)  # the source session's zone
        rows.append({c: row[c] for c in BY_NAME[table].columns})
    return rows


@pytest.mark.parametrize("spec", TABLES, ids=lambda s: s.name)
def test_source_frames_get_the_reference_verdict(spec: TableSpec) -> None:
    """The COPY path: a typed frame gives the verdict psycopg rows got, payloads included."""
    rows = typed_rows(spec.name, 800, seed=7 + len(spec.name))
    plan = vec.compile_contract(spec.model)
    frame = pl.DataFrame(
        [tuple(r[c] for c in spec.columns) for r in rows], schema=plan.schema, orient="row"
    )
    fast = split_frame(spec, frame, NOW, BERLIN)
    ref = reference_split_rows(spec, rows, NOW)
    assert verdict(fast) == verdict(ref)
    assert ref.rejected
    assert ref.valid


def test_a_contract_rule_without_a_vectorized_twin_fails_loudly() -> None:
    class Odd(contracts.SourceRow):
        level: int = Field(ge=0)

        @model_validator(mode="after")
        def _level_even(self) -> Odd:
            return self

    with pytest.raises(vec.UnsupportedContractError, match="_level_even"):
        vec.compile_contract(Odd)


def test_every_contract_compiles() -> None:
    kinds: Callable[[type[BaseModel]], set[str]] = lambda m: {  # noqa: E731
        f.kind for f in vec.compile_contract(m).fields
    }
    assert set().union(*(kinds(m) for m in contracts.RAW_CONTRACTS.values())) == {
        "int",
        "str",
        "bool",
        "datetime",
        "literal",
    }

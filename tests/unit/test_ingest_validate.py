"""Row contracts: what is quarantined, with which reason, and what the watermark may see."""

from datetime import UTC, datetime, timedelta

from orchestration.lib.ingest.tables import BY_NAME
from orchestration.lib.ingest.validate import split_rows

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def session(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": 1,
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
        "created_at": NOW - timedelta(days=1),
        "updated_at": NOW - timedelta(hours=1),
    }
    row.update(over)
    return row


def test_valid_rows_pass_in_column_order() -> None:
    batch = split_rows(BY_NAME["sessions"], [session()], NOW)
    assert not batch.rejected
    assert batch.valid[0][0] == 1
    assert len(batch.valid[0]) == len(BY_NAME["sessions"].columns)


def test_bad_rows_are_rejected_with_readable_reasons() -> None:
    rows = [
        session(id=2, rating=7),
        session(id=3, customer_id=None),
        session(id=4, created_at=NOW + timedelta(days=1), updated_at=NOW + timedelta(days=1)),
        session(id=5, status="teleported"),
        session(id=6),
    ]
    batch = split_rows(BY_NAME["sessions"], rows, NOW)
    reasons = {r.source_key: r.reason for r in batch.rejected}
    assert set(reasons) == {"2", "3", "4", "5"}
    assert "rating" in reasons["2"]
    assert "less than or equal to 5" in reasons["2"]
    assert "customer_id" in reasons["3"]
    assert "in the future" in reasons["4"]
    assert "status" in reasons["5"]
    assert [v[0] for v in batch.valid] == [6]


def test_watermark_ignores_rejected_future_rows() -> None:
    future = NOW + timedelta(days=1)
    batch = split_rows(
        BY_NAME["sessions"],
        [session(id=1), session(id=2, updated_at=future, created_at=future)],
        NOW,
    )
    assert batch.max_updated_at == NOW - timedelta(hours=1)


def test_small_clock_skew_is_tolerated() -> None:
    skewed = NOW + timedelta(minutes=2)
    batch = split_rows(BY_NAME["sessions"], [session(updated_at=skewed)], NOW)
    assert not batch.rejected


def test_rejected_payload_hash_is_stable_for_reruns() -> None:
    rows = [session(id=9, rating=0)]
    a = split_rows(BY_NAME["sessions"], rows, NOW).rejected[0]
    b = split_rows(BY_NAME["sessions"], rows, NOW).rejected[0]
    assert a.payload_hash == b.payload_hash


def test_call_with_unknown_reason_code_is_rejected() -> None:
    call = {
        "id": 1,
        "customer_id": 3,
        "reason_code": "aliens",
        "channel": "phone",
        "duration_seconds": 60,
        "resolved": True,
        "called_at": NOW.isoformat(),
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
    }
    batch = split_rows(BY_NAME["inbound_calls"], [call], NOW)
    assert "reason_code" in batch.rejected[0].reason

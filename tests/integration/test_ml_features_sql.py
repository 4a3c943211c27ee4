"""Churn features and labels computed by the warehouse SQL, checked by hand on a few customers.

as_of = 2025-03-01. Windows: 28 days from 2025-02-01, 30 days from 2025-01-30, 90 days from
2024-12-01; the label horizon ends 2025-04-30.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
import pytest

from ml.features import NUMERIC_FEATURES, data_range, label_churn, load_features

pytestmark = pytest.mark.integration

AS_OF = datetime(2025, 3, 1, tzinfo=UTC)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def customer(
    cid: int,
    signed_up: str,
    channel: str | None = "organic",
    status: str = "active",
    updated: str = "2025-01-01",
    deleted: str | None = None,
    goal: int | None = 50,
) -> tuple[Any, ...]:
    return (
        cid,
        status,
        ts(signed_up),
        ts(deleted) if deleted else None,
        goal,
        channel,
        ts(signed_up),
        ts(updated),
    )


CUSTOMERS = [
    customer(1, "2024-12-01", goal=40),
    customer(2, "2025-02-15", channel="paid_search", goal=None),
    customer(3, "2024-06-01", channel=None),
    customer(4, "2025-03-02"),  # signs up after as_of
    customer(5, "2024-06-01", deleted="2025-02-01"),  # deleted before as_of
    customer(6, "2024-06-01", status="cancelled", updated="2025-02-10"),  # left before as_of
    customer(7, "2024-06-01", status="cancelled", updated="2025-04-10"),  # left after as_of
    customer(8, "2024-06-01", deleted="2025-03-15"),  # deleted after as_of
]

# Columns: customer, tutor, scheduled_at, status, cancelled_by, no_show_by and rating.
SESSIONS = [
    (1, 10, "2025-01-15", "completed", None, None, 5),  # 90d only
    (1, 11, "2025-02-10", "completed", None, None, 2),
    (1, 10, "2025-02-20", "completed", None, None, 4),
    (1, 11, "2025-02-15", "cancelled", "tutor", None, None),
    (1, 11, "2025-02-16", "cancelled", "customer", None, None),  # not the tutor's fault
    (1, 12, "2025-02-25", "no_show", None, "tutor", None),
    (1, 12, "2025-02-26", "no_show", None, "customer", None),  # not the tutor's fault
    (1, 13, "2024-11-01", "cancelled", "tutor", None, None),  # before the 90-day window
    (1, 10, "2025-03-05", "completed", None, None, 1),  # after as_of: label only
    (2, 10, "2025-04-15", "scheduled", None, None, None),  # booked within the horizon
    (3, 14, "2024-10-01", "completed", None, None, 3),
    (3, 14, "2025-03-10", "cancelled", "customer", None, None),  # cancelled: still churned
    (3, 14, "2025-05-15", "completed", None, None, 5),  # after the horizon
    (7, 10, "2025-02-28", "completed", None, None, 5),
    (8, 10, "2025-03-20", "completed", None, None, 5),
]

CALLS = [(1, "2025-02-15"), (1, "2025-01-01"), (1, "2025-03-02"), (3, "2025-02-28")]


@pytest.fixture
def conn(warehouse_url: str) -> psycopg.Connection:
    with psycopg.connect(warehouse_url) as connection:
        cur = connection.cursor()
        cur.executemany(
            "insert into raw.customers (id, status, signed_up_at, deleted_at, goal_progress_pct,"
            " acquisition_channel, created_at, updated_at) values (%s, %s, %s, %s, %s, %s, %s, %s)",
            CUSTOMERS,
        )
        cur.executemany(
            "insert into raw.sessions (id, customer_id, tutor_id, subject_id, scheduled_at,"
            " duration_minutes, status, cancelled_by, no_show_by, rating, is_first_session,"
            " created_at, updated_at)"
            " values (%s, %s, %s, 1, %s, 60, %s, %s, %s, %s, false, %s, %s)",
            [
                (i, c, t, ts(at), st, cb, nb, r, ts(at), ts(at))
                for i, (c, t, at, st, cb, nb, r) in enumerate(SESSIONS, start=1)
            ],
        )
        cur.executemany(
            "insert into raw.inbound_calls (id, customer_id, reason_code, called_at, created_at,"
            " updated_at) values (%s, %s, 'billing', %s, %s, %s)",
            [(i, c, ts(at), ts(at), ts(at)) for i, (c, at) in enumerate(CALLS, start=1)],
        )
        connection.commit()
        yield connection


def test_population_is_point_in_time(conn: psycopg.Connection) -> None:
    features = load_features(conn, AS_OF)
    assert list(features.index) == [1, 2, 3, 7, 8]


def test_features_by_hand(conn: psycopg.Connection) -> None:
    features = load_features(conn, AS_OF)
    one = features.loc[1]
    assert one["sessions_per_week"] == 0.5  # Feb 10 and Feb 20 in the last 4 weeks
    assert one["days_since_last_session"] == pytest.approx(9.0)  # Feb 20
    assert one["avg_rating_30d"] == pytest.approx(3.0)  # (2 + 4) / 2
    assert one["inbound_calls_30d"] == 1
    assert one["goal_progress_pct"] == 40
    assert one["distinct_tutors_90d"] == 2  # tutors 10 and 11
    assert one["tutor_switches_90d"] == 2  # 10 -> 11 -> 10
    assert one["tenure_days"] == pytest.approx(90.0)
    assert one["tutor_cancellations_90d"] == 1
    assert one["tutor_no_shows_90d"] == 1
    assert one["channel_organic"] == 1
    assert one["channel_paid_search"] == 0

    two = features.loc[2]  # new, no sessions yet
    assert two["sessions_per_week"] == 0
    assert two["days_since_last_session"] == pytest.approx(14.0)  # = tenure
    assert np.isnan(two["avg_rating_30d"])
    assert np.isnan(two["goal_progress_pct"])
    assert two["distinct_tutors_90d"] == 0
    assert two["channel_paid_search"] == 1

    three = features.loc[3]
    assert three["days_since_last_session"] == pytest.approx(151.0)  # 2024-10-01
    assert three["distinct_tutors_90d"] == 0
    assert three["inbound_calls_30d"] == 1
    assert three["channel_unknown"] == 1

    assert list(features.columns[: len(NUMERIC_FEATURES)]) == list(NUMERIC_FEATURES)
    assert features.dtypes.eq("float64").all()


def test_labels_by_hand(conn: psycopg.Connection) -> None:
    labels = label_churn(conn, AS_OF, horizon_days=60)
    assert labels.to_dict() == {1: 0, 2: 0, 3: 1, 7: 1, 8: 0}


def test_labels_need_data_past_the_horizon(conn: psycopg.Connection) -> None:
    assert data_range(conn) == (ts("2024-10-01"), ts("2025-05-15"))
    with pytest.raises(ValueError, match="labels need data"):
        label_churn(conn, datetime(2025, 4, 1, tzinfo=UTC), horizon_days=60)


def test_an_empty_warehouse(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as connection:
        assert data_range(connection) == (None, None)
        assert load_features(connection, AS_OF).empty

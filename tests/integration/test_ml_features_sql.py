"""Churn features and labels computed by the warehouse SQL over the relations dbt builds,
checked by hand on a few customers, and shown not to change when rows after the cut-off arrive.

as_of = 2025-03-01. Windows: 30 days from 2025-01-30, 90 days from 2024-12-01, the 90 days
before the last 30 from 2024-11-01; the label horizon ends 2025-04-30.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest

from ml.features import (
    DBT_MODELS,
    NUMERIC_FEATURES,
    SAMPLE_BUCKETS,
    combine_shards,
    data_range,
    history_covers,
    label_churn,
    load_features,
    population_size,
    shards,
)
from opsdash_core.dbt_env import dbt_env
from opsdash_core.settings import PROJECT_ROOT, get_settings

pytestmark = pytest.mark.integration

AS_OF = datetime(2025, 3, 1, tzinfo=UTC)


def build_feature_relations(warehouse_url: str, work: Path, *, full_refresh: bool = False) -> None:
    """dbt run of the models `ml.features` reads, into `warehouse_url`. `full_refresh` rebuilds
    the incremental relation from every raw row (the test rows carry old `updated_at` values
    that an incremental run would treat as already seen)."""
    project = PROJECT_ROOT / "dbt_project"
    env = {
        **os.environ,
        **dbt_env(get_settings()),
        "OPSDASH_DBT_DBNAME": warehouse_url.rsplit("/", 1)[1],
        "DBT_USE_COLORS": "false",
    }
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "run",
            "--select",
            *DBT_MODELS,
            *(["--full-refresh"] if full_refresh else []),
            "--profiles-dir",
            str(project),
            "--target-path",
            str(work / "target"),
            "--log-path",
            str(work / "logs"),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-5000:]


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

# Columns: customer, tutor, scheduled_at, status, cancelled_by, no_show_by, rating and when
# the row was created (booked; the scheduled time when None).
SESSIONS = [
    (1, 10, "2025-01-15", "completed", None, None, 5, None),
    (1, 11, "2025-02-10", "completed", None, None, 2, None),
    (1, 10, "2025-02-20", "completed", None, None, 4, None),
    (1, 11, "2025-02-15", "cancelled", "tutor", None, None, None),
    (1, 11, "2025-02-16", "cancelled", "customer", None, None, None),
    (1, 12, "2025-02-25", "no_show", None, "tutor", None, None),
    (1, 12, "2025-02-26", "no_show", None, "customer", None, None),
    (1, 13, "2024-11-01", "cancelled", "tutor", None, None, None),  # before the 90-day window
    (1, 10, "2025-03-05", "completed", None, None, 1, None),  # after as_of: label only
    (2, 10, "2025-04-15", "scheduled", None, None, None, None),  # booked within the horizon
    (3, 14, "2024-10-01", "completed", None, None, 3, None),
    (3, 14, "2025-03-10", "cancelled", "customer", None, None, None),  # cancelled: churned
    (3, 14, "2025-05-15", "completed", None, None, 5, None),  # after the horizon
    (7, 10, "2025-02-28", "completed", None, None, 5, None),
    (8, 10, "2025-03-20", "completed", None, None, 5, "2025-02-20"),  # booked before as_of
]

CALLS = [(1, "2025-02-15"), (1, "2025-01-01"), (1, "2025-03-02"), (3, "2025-02-28")]


def insert_sessions(conn: psycopg.Connection, rows: list[tuple[Any, ...]], first_id: int) -> None:
    conn.cursor().executemany(
        "insert into raw.sessions (id, customer_id, tutor_id, subject_id, scheduled_at,"
        " duration_minutes, status, cancelled_by, no_show_by, rating, is_first_session,"
        " created_at, updated_at)"
        " values (%s, %s, %s, 1, %s, 60, %s, %s, %s, %s, false, %s, %s)",
        [
            (i, c, t, ts(at), st, cb, nb, r, ts(made or at), ts(at))
            for i, (c, t, at, st, cb, nb, r, made) in enumerate(rows, start=first_id)
        ],
    )


def insert_calls(conn: psycopg.Connection, rows: list[tuple[int, str]], first_id: int) -> None:
    conn.cursor().executemany(
        "insert into raw.inbound_calls (id, customer_id, reason_code, called_at, created_at,"
        " updated_at) values (%s, %s, 'billing', %s, %s, %s)",
        [(i, c, ts(at), ts(at), ts(at)) for i, (c, at) in enumerate(rows, start=first_id)],
    )


def _load_fixture_rows(warehouse_url: str, work: Path) -> None:
    with psycopg.connect(warehouse_url) as connection:
        connection.cursor().executemany(
            "insert into raw.customers (id, status, signed_up_at, deleted_at, goal_progress_pct,"
            " acquisition_channel, created_at, updated_at) values (%s, %s, %s, %s, %s, %s, %s, %s)",
            CUSTOMERS,
        )
        insert_sessions(connection, SESSIONS, 1)
        insert_calls(connection, CALLS, 1)
        connection.commit()
    build_feature_relations(warehouse_url, work)


@pytest.fixture(scope="module")
def shared_conn(
    module_warehouse_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[psycopg.Connection]:
    """One built warehouse for the tests that only read it (a dbt run costs ~15 s)."""
    _load_fixture_rows(module_warehouse_url, tmp_path_factory.mktemp("dbt"))
    with psycopg.connect(module_warehouse_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def conn(warehouse_url: str, tmp_path: Path) -> Iterator[psycopg.Connection]:
    """A warehouse of its own, for a test that appends rows."""
    _load_fixture_rows(warehouse_url, tmp_path)
    with psycopg.connect(warehouse_url) as connection:
        yield connection


def test_population_is_point_in_time(shared_conn: psycopg.Connection) -> None:
    conn = shared_conn
    features = load_features(conn, AS_OF)
    assert list(features.index) == [1, 2, 3, 7, 8]


def test_features_by_hand(shared_conn: psycopg.Connection) -> None:
    conn = shared_conn
    features = load_features(conn, AS_OF)
    one = features.loc[1]
    assert one["recency_days"] == pytest.approx(9.0)  # Feb 20
    assert one["customer_age_days"] == pytest.approx(90.0)
    assert one["lifetime_sessions"] == 3
    assert one["sessions_per_active_week"] == pytest.approx(1.0)  # three different weeks
    assert one["sessions_per_tenure_week"] == pytest.approx(3 / (90 / 7))
    assert one["lifetime_minutes"] == 180
    assert one["mean_gap_days"] == pytest.approx(18.0)  # Jan 15 -> Feb 20 over two gaps
    assert one["gap_ratio"] == pytest.approx(0.5)
    assert one["recent_sessions_30d"] == 2
    assert one["prior_sessions_90d"] == 1
    assert one["session_trend"] == pytest.approx(3 / (1 / 3 + 1))
    assert one["rating_avg_90d"] == pytest.approx(11 / 3)
    assert one["rating_last"] == 4
    assert one["support_calls_30d"] == 1
    assert one["tutor_changes_90d"] == 2  # 10 -> 11 -> 10
    assert one["tutor_failures_90d"] == 2  # a cancellation and a no-show by the tutor
    assert one["customer_cancellations_90d"] == 2
    assert one["bookings_ahead"] == 0
    assert one["channel_organic"] == 1
    assert one["channel_paid_search"] == 0

    two = features.loc[2]  # new, no sessions yet
    assert two["recency_days"] == pytest.approx(14.0)  # = age
    assert two["lifetime_sessions"] == 0
    assert np.isnan(two["mean_gap_days"])
    assert np.isnan(two["gap_ratio"])
    assert np.isnan(two["rating_last"])
    assert two["session_trend"] == 1
    assert two["channel_paid_search"] == 1

    three = features.loc[3]
    assert three["recency_days"] == pytest.approx(151.0)  # 2024-10-01
    assert np.isnan(three["rating_avg_90d"])
    assert three["rating_last"] == 3
    assert three["support_calls_30d"] == 1
    assert three["channel_unknown"] == 1

    assert features.loc[8, "bookings_ahead"] == 1  # booked on Feb 20 for Mar 20
    # customer 7 changed after as_of and the warehouse kept no history of it: goal progress at
    # as_of is unknown, so it is nobody's feature
    assert "goal_progress_pct" not in features.columns
    assert list(features.columns[: len(NUMERIC_FEATURES)]) == list(NUMERIC_FEATURES)
    assert features.dtypes.eq("float64").all()


def test_rows_after_the_cutoff_change_nothing(
    conn: psycopg.Connection, warehouse_url: str, tmp_path: Path
) -> None:
    """The leakage test: sessions, bookings, calls and customers that arrive after as_of,
    customers whose goal progress and status change after as_of, and a rebuild of the
    relations, leave the features at as_of exactly as they were."""
    before = load_features(conn, AS_OF)
    later_sessions = [
        (1, 15, "2025-03-02", "completed", None, None, 1, None),
        (2, 15, "2025-03-03", "cancelled", "tutor", None, None, "2025-03-02"),
        (3, 15, "2025-06-01", "scheduled", None, None, None, "2025-03-20"),
        (9, 15, "2025-03-04", "completed", None, None, 5, None),
    ]
    insert_sessions(conn, later_sessions, 100)
    insert_calls(conn, [(1, "2025-03-01T00:00:01"), (2, "2025-04-01")], 100)
    conn.cursor().execute(
        "insert into raw.customers (id, status, signed_up_at, acquisition_channel, created_at,"
        " updated_at) values (9, 'active', %s, 'tv', %s, %s)",
        (ts("2025-03-01T12:00:00"), ts("2025-03-01T12:00:00"), ts("2025-03-01T12:00:00")),
    )
    conn.commit()  # the next transaction updates rows ingested before it (history starts)
    conn.cursor().execute(
        "update raw.customers set goal_progress_pct = 95, status = 'cancelled', updated_at = %s"
        " where id in (1, 3)",
        (ts("2025-03-10"),),
    )
    conn.commit()
    build_feature_relations(warehouse_url, tmp_path / "again", full_refresh=True)
    after = load_features(conn, AS_OF)
    pd.testing.assert_frame_equal(after, before)
    # ... while a later cut-off does see them.
    assert load_features(conn, ts("2025-03-05")).loc[1, "lifetime_sessions"] == 4


def test_labels_by_hand(shared_conn: psycopg.Connection) -> None:
    conn = shared_conn
    labels = label_churn(conn, AS_OF, horizon_days=60)
    assert labels.to_dict() == {1: 0, 2: 0, 3: 1, 7: 1, 8: 0}


def test_a_training_sample_is_some_customers_with_exactly_their_full_features(
    shared_conn: psycopg.Connection,
) -> None:
    conn = shared_conn
    assert population_size(conn, AS_OF) == 5
    full, labels = load_features(conn, AS_OF), label_churn(conn, AS_OF, horizon_days=60)
    kept: set[int] = set()
    for buckets in (SAMPLE_BUCKETS // 4, SAMPLE_BUCKETS // 2, 3 * SAMPLE_BUCKETS // 4):
        part = load_features(conn, AS_OF, sample=buckets)
        assert set(part.index) <= set(full.index)
        assert set(part.index) >= kept  # a larger sample keeps the smaller one's customers
        kept = set(part.index)
        # features and labels of a sampled customer are those of the full run, not of the
        # sample (every aggregate of theirs saw all their sessions and calls)
        pd.testing.assert_frame_equal(part, full.loc[part.index, part.columns])
        sampled_labels = label_churn(conn, AS_OF, horizon_days=60, sample=buckets)
        assert sampled_labels.to_dict() == labels.loc[part.index].to_dict()
    assert set(load_features(conn, AS_OF, sample=SAMPLE_BUCKETS).index) == set(full.index)


def test_features_loaded_in_shards_are_the_features_of_everyone(
    shared_conn: psycopg.Connection,
) -> None:
    """Scoring loads its features in shards side by side: together they must be exactly the
    one query's frame (same rows, columns, order and values)."""
    conn = shared_conn
    full = load_features(conn, AS_OF)
    for n in (2, 3, 7):
        parts = [load_features(conn, AS_OF, sample=part) for part in shards(n)]
        assert sum(len(p) for p in parts) == len(full)
        pd.testing.assert_frame_equal(combine_shards(parts), full)


def test_labels_need_data_past_the_horizon(shared_conn: psycopg.Connection) -> None:
    conn = shared_conn
    assert data_range(conn) == (ts("2024-10-01"), ts("2025-05-15"))
    with pytest.raises(ValueError, match="labels need data"):
        label_churn(conn, datetime(2025, 4, 1, tzinfo=UTC), horizon_days=60)


def test_an_empty_warehouse(warehouse_url: str, tmp_path: Path) -> None:
    build_feature_relations(warehouse_url, tmp_path)
    with psycopg.connect(warehouse_url) as connection:
        assert data_range(connection) == (None, None)
        assert load_features(connection, AS_OF).empty


def test_attributes_are_read_as_they_were_at_the_cutoff(
    conn: psycopg.Connection, warehouse_url: str
) -> None:
    """Goal progress and status come from the version valid at the cut-off, kept by the
    warehouse's history (the trigger of migration 0014, fired by ingestion's upserts); before
    the history began, goal progress is unknown for everyone."""
    later = ts("2025-04-15")  # after every fixture row's updated_at: the history covers it
    before = load_features(conn, later)
    assert before.loc[1, "goal_progress_pct"] == 40
    assert history_covers(conn, later)
    # An ingestion cycle (as the role that loads raw) changes two customers after `later`,
    # and touches a third without changing any tracked attribute.
    with conn.cursor() as cur:
        cur.execute("set role opsdash_ingest")
        cur.execute(
            "update raw.customers set goal_progress_pct = 90, updated_at = %s where id = 1",
            (ts("2025-05-01"),),
        )
        cur.execute(
            "update raw.customers set status = 'cancelled', updated_at = %s where id = 3",
            (ts("2025-05-02"),),
        )
        cur.execute(
            "update raw.customers set email = 'new@example.com', updated_at = %s where id = 2",
            (ts("2025-05-03"),),
        )
        cur.execute("reset role")
    conn.commit()
    kept = conn.execute(
        "select customer_id, goal_progress_pct, status, valid_from, valid_to"
        " from raw.customers_history order by customer_id"
    ).fetchall()
    assert kept == [
        (1, 40, "active", ts("2025-01-01"), ts("2025-05-01")),
        (3, 50, "active", ts("2025-01-01"), ts("2025-05-02")),
    ]
    pd.testing.assert_frame_equal(load_features(conn, later), before)
    # a cut-off after the changes sees them: customer 3 has left, customer 1's new goal
    after = load_features(conn, ts("2025-05-05"))
    assert after.loc[1, "goal_progress_pct"] == 90
    assert 3 not in after.index
    # History began with the newest version ingested before it (customer 7, 2025-04-10):
    # earlier cut-offs are not covered, for anyone.
    assert not history_covers(conn, AS_OF)
    assert "goal_progress_pct" not in load_features(conn, AS_OF).columns
    # the model's role reads the history
    with psycopg.connect(warehouse_url) as reader:
        reader.execute("set role opsdash_ml")
        assert reader.execute("select count(*) from raw.customers_history").fetchone() == (2,)
    # A truncated and reloaded table starts over: the reload's versions had predecessors that
    # were never kept, so `later` is no longer covered.
    conn.execute("truncate raw.customers")
    conn.execute(
        "insert into raw.customers (id, status, signed_up_at, goal_progress_pct, created_at,"
        " updated_at) values (1, 'active', %s, 90, %s, %s)",
        (ts("2024-12-01"), ts("2024-12-01"), ts("2025-05-01")),
    )
    conn.commit()
    assert not history_covers(conn, later)

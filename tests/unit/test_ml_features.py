"""Choosing where to cut history for training and how many customers it reads (the SQL itself
runs in tests/integration)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from ml.features import (
    FEATURES_SQL,
    LABELS_SQL,
    SAMPLE_BUCKETS,
    _sampled,
    choose_training_window,
    sample_buckets,
    shards,
)

NEWEST = datetime(2025, 6, 30, tzinfo=UTC)


def test_full_history_cuts_a_full_horizon_before_the_newest_session() -> None:
    window = choose_training_window(NEWEST - timedelta(days=180), NEWEST)
    assert window.horizon_days == 60
    assert window.as_of == NEWEST - timedelta(days=60)


def test_short_history_keeps_four_weeks_of_features() -> None:
    window = choose_training_window(NEWEST - timedelta(days=70), NEWEST)
    assert window.horizon_days == 42
    assert window.as_of == NEWEST - timedelta(days=42)


def test_very_short_history_splits_in_half() -> None:
    window = choose_training_window(NEWEST - timedelta(days=20), NEWEST)
    assert window.horizon_days == 10
    assert choose_training_window(NEWEST, NEWEST).horizon_days == 1


def test_a_population_under_the_cap_is_read_whole() -> None:
    assert sample_buckets(26_000, 100_000) is None
    assert sample_buckets(100_000, 100_000) is None


def test_a_larger_population_is_sampled_to_about_the_cap_never_below_it() -> None:
    buckets = sample_buckets(260_000, 100_000)
    assert buckets is not None
    assert 100_000 <= 260_000 * buckets / SAMPLE_BUCKETS < 101_000
    assert sample_buckets(10**9, 10) == 1  # at least one bucket


def test_unsampled_sql_has_no_filter_and_sampled_sql_filters_every_source() -> None:
    for sql in (FEATURES_SQL, LABELS_SQL):
        assert "hashint8" not in _sampled(sql, None)
        assert "/*sample" not in _sampled(sql, None)
        assert _sampled(sql, SAMPLE_BUCKETS) == _sampled(sql, None)
    features = _sampled(FEATURES_SQL, 256)
    # customers, their history versions, sessions (history and bookings ahead) and calls
    assert features.count("& 1023) < 256") == 5
    assert "hashint8(ic.customer_id::bigint)" in features
    assert _sampled(LABELS_SQL, 256).count("& 1023) < 256") == 3


def test_shards_cover_every_bucket_once_and_filter_by_range() -> None:
    for n in (1, 2, 3, 7):
        parts = shards(n)
        assert parts[0][0] == 0
        assert parts[-1][1] == SAMPLE_BUCKETS
        assert all(a[1] == b[0] for a, b in pairwise(parts))
    assert _sampled(FEATURES_SQL, (0, SAMPLE_BUCKETS)) == _sampled(FEATURES_SQL, None)
    middle = _sampled(FEATURES_SQL, (256, 512))
    assert middle.count("& 1023) >= 256") == 5
    assert middle.count("& 1023) < 512") == 5

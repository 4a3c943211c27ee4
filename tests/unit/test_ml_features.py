"""Choosing where to cut history for training (the SQL itself runs in tests/integration)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ml.features import choose_training_window

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

"""The recency and RFM baselines a churn model must beat on the out-of-time holdout, and
the agreement of the training cut-offs on history-read attributes."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from ml.churn import ChurnParams
from ml.churn_baselines import baseline_gains
from ml.churn_training import agree_on_history_features, select_model


def synthetic(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Churn driven by recency and by support calls, which no RFM feature sees."""
    rng = np.random.default_rng(seed)
    sessions = rng.poisson(8, n).astype(float)
    x = pd.DataFrame(
        {
            "recency_days": rng.exponential(20, n),
            "lifetime_sessions": sessions,
            "lifetime_minutes": sessions * 60,
            "support_calls_30d": rng.poisson(0.7, n).astype(float),
        }
    )
    logit = -2.5 + 0.04 * x["recency_days"] + 1.2 * x["support_calls_30d"]
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), index=x.index)
    return x, y


def test_a_model_that_sees_more_than_rfm_beats_both_baselines_on_the_holdout() -> None:
    train_x, train_y = synthetic(4000, 1)
    valid_x, valid_y = synthetic(4000, 2)
    selection = select_model(
        train_x, train_y, valid_x, valid_y, challenger_params=ChurnParams(boosting_rounds=40)
    )
    gains = selection.baselines
    assert gains is not None
    assert gains.recency.rows == gains.rfm.rows == 4000  # the same holdout rows
    assert gains.recency.candidate_auc == gains.rfm.candidate_auc
    # the chosen model's ranking (the reported AUC is of cross-fitted calibrated halves)
    assert gains.rfm.candidate_auc == pytest.approx(selection.evaluation.roc_auc, abs=0.005)
    assert gains.recency.lower > 0.03  # support calls carry what recency cannot
    assert gains.rfm.lower > 0.03
    assert 0.5 < gains.recency.baseline_auc < gains.recency.candidate_auc
    metrics = gains.metrics()
    assert metrics["baseline_recency_auc"] == gains.recency.baseline_auc
    assert metrics["gain_vs_rfm_lower"] == gains.rfm.lower


def test_a_model_that_is_recency_alone_does_not_beat_recency() -> None:
    train_x, train_y = synthetic(2000, 3)
    valid_x, valid_y = synthetic(2000, 4)
    gains = baseline_gains(
        train_x, train_y, valid_x, valid_y.to_numpy(), valid_x["recency_days"].to_numpy()
    )
    assert gains is not None
    assert gains.recency.gain == 0
    assert not gains.recency.lower > 0
    assert gains.rfm.gain < 0.02  # recency is most of what RFM knows here


def test_goal_progress_is_used_only_when_every_cutoff_has_it() -> None:
    early, late = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)
    with_goal = pd.DataFrame({"recency_days": [1.0], "goal_progress_pct": [40.0]})
    without = pd.DataFrame({"recency_days": [2.0]})
    frames, history = agree_on_history_features({early: without, late: with_goal})
    assert all("goal_progress_pct" not in f.columns for f in frames.values())
    assert history.used == ()
    assert "2025-01-01" in history.note()
    assert "goal_progress_pct left out" in history.note()
    frames, history = agree_on_history_features({early: with_goal, late: with_goal})
    assert history.used == ("goal_progress_pct",)
    assert all("goal_progress_pct" in f.columns for f in frames.values())

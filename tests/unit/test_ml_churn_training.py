"""Out-of-time cut-offs and the choice between model families."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from ml.churn import ChurnParams
from ml.churn_training import plan_cutoffs, select_model

NEWEST = datetime(2025, 6, 30, tzinfo=UTC)


def test_training_labels_end_before_the_holdout_begins() -> None:
    plan = plan_cutoffs(NEWEST - timedelta(days=365), NEWEST)
    assert plan.out_of_time
    assert plan.horizon_days == 60
    assert plan.valid_cutoff == NEWEST - timedelta(days=60)
    assert len(plan.train_cutoffs) == 3
    for cutoff in plan.train_cutoffs:
        assert cutoff + timedelta(days=plan.horizon_days) <= plan.valid_cutoff
    assert max(plan.train_cutoffs) == NEWEST - timedelta(days=120)


def test_short_history_falls_back_and_says_so() -> None:
    plan = plan_cutoffs(NEWEST - timedelta(days=100), NEWEST)
    assert not plan.out_of_time
    (cutoff,) = plan.train_cutoffs
    assert NEWEST - timedelta(days=100) < cutoff < plan.valid_cutoff


def synthetic(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {"recency_days": rng.exponential(20, n), "lifetime_sessions": rng.poisson(5, n)}
    )
    logit = -2 + 0.05 * x["recency_days"] - 0.1 * x["lifetime_sessions"]
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), index=x.index)
    return x, y


def test_logistic_regression_stays_unless_the_challenger_clearly_wins() -> None:
    """On a linear problem gradient boosting cannot clear the margin: the readable model stays."""
    train_x, train_y = synthetic(3000, 1)
    valid_x, valid_y = synthetic(3000, 2)
    selection = select_model(
        train_x,
        train_y,
        valid_x,
        valid_y,
        challenger_params=ChurnParams(kind="hgb", boosting_rounds=40),
    )
    assert selection.model.kind == "logreg"
    assert not selection.challenger.candidate_wins
    assert selection.evaluation.rows == 3000
    assert selection.evaluation.brier < selection.evaluation.brier_base_rate

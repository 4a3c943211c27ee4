"""Drift of churn features: a shifted feature crosses the alert level, a stable one does not;
realized accuracy of past scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.churn_accuracy import realized_metrics
from ml.churn_drift import PSI_ALERT, feature_drift, psi


def population(n: int, seed: int, recency_scale: float = 20.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rating = np.where(rng.random(n) < 0.2, np.nan, rng.uniform(1, 5, n))
    return pd.DataFrame(
        {
            "recency_days": rng.exponential(recency_scale, n),
            "support_calls_30d": rng.poisson(0.4, n).astype(float),
            "rating_avg_90d": rating,
        }
    )


def test_a_drifted_feature_raises_an_alert_and_stable_ones_do_not() -> None:
    training = population(20_000, 1)
    today = population(20_000, 2, recency_scale=45.0)  # customers stay away twice as long
    drift = {d.feature: d for d in feature_drift(training, today)}
    assert drift["recency_days"].drifted
    assert drift["recency_days"].psi > PSI_ALERT
    assert not drift["support_calls_30d"].drifted
    assert not drift["rating_avg_90d"].drifted
    assert next(iter(feature_drift(training, today))).feature == "recency_days"


def test_psi_of_the_same_distribution_is_near_zero_and_missing_values_count() -> None:
    training = population(20_000, 1)
    assert psi(training["recency_days"], population(20_000, 3)["recency_days"]) < 0.01
    more_missing = training["rating_avg_90d"].copy()
    more_missing.iloc[: len(more_missing) // 2] = np.nan
    assert psi(training["rating_avg_90d"], more_missing) > PSI_ALERT
    assert psi(pd.Series([1.0, 1.0]), pd.Series([1.0])) == pytest.approx(0.0)


def test_a_count_or_channel_with_few_values_drifts_when_its_mix_changes() -> None:
    never_called = pd.Series(np.zeros(5_000))
    assert psi(never_called, pd.Series(np.full(5_000, 3.0))) > PSI_ALERT  # unseen value
    assert psi(never_called, pd.Series(np.zeros(4_000))) == pytest.approx(0.0)
    channel = pd.Series((np.arange(10_000) % 10 < 3).astype(float))  # 30% from this channel
    assert psi(channel, pd.Series((np.arange(10_000) % 10 < 3).astype(float))) < 0.001
    assert psi(channel, pd.Series((np.arange(10_000) % 10 < 7).astype(float))) > PSI_ALERT


def test_realized_metrics_at_the_scoring_threshold() -> None:
    truth = np.array([1, 1, 0, 0, 1, 0])
    proba = np.array([0.9, 0.7, 0.6, 0.1, 0.2, 0.3])
    auc, recall, precision = realized_metrics(truth, proba, 0.5)
    assert auc == pytest.approx(7 / 9)  # 7 of the 9 churner/stayer pairs ranked right
    assert recall == pytest.approx(2 / 3)
    assert precision == pytest.approx(2 / 3)
    assert realized_metrics(np.zeros(3), np.array([0.1, 0.2, 0.9]), None) == (None, None, None)
    assert realized_metrics(truth, np.zeros(6), 0.5)[1:] == (0.0, None)  # nobody flagged

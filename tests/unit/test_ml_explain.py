"""Per-customer SHAP factors: ordered by impact, signed correctly, worded for people."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.churn import ChurnModel, ChurnParams, fit_churn_model
from ml.explain import feature_label, shap_values, top_factors


@pytest.fixture(scope="module")
def data() -> tuple[ChurnModel, pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = 3000
    features = pd.DataFrame(
        {
            "days_since_last_session": rng.exponential(20, n),
            "sessions_per_week": rng.poisson(1.5, n).astype(float),
            "inbound_calls_30d": rng.poisson(0.3, n).astype(float),
            "avg_rating_30d": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(1, 5, n)),
            "channel_paid_search": (rng.random(n) < 0.3).astype(float),
        },
        index=pd.Index(np.arange(100, 100 + n), name="customer_id"),
    )
    logit = (
        0.1 * features["days_since_last_session"]
        - 1.2 * features["sessions_per_week"]
        + 0.9 * features["inbound_calls_30d"]
    )
    labels = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), index=features.index)
    return fit_churn_model(features, labels, ChurnParams()), features


def test_shap_is_coef_times_centred_standardized_value(
    data: tuple[ChurnModel, pd.DataFrame],
) -> None:
    model, features = data
    standardized = model.pipeline[:-1].transform(model.align(features))
    expected = model.pipeline[-1].coef_[0] * (standardized - standardized.mean(axis=0))
    np.testing.assert_allclose(shap_values(model, features), expected, atol=1e-9)


def test_shap_values_add_up_to_the_log_odds(data: tuple[ChurnModel, pd.DataFrame]) -> None:
    model, features = data
    sample = features.head(50)
    log_odds = model.pipeline.decision_function(model.align(sample))
    base = model.pipeline[-1].intercept_[0]  # standardized training mean is 0
    np.testing.assert_allclose(shap_values(model, sample).sum(axis=1) + base, log_odds, atol=1e-9)


def test_top_factors_sorted_by_magnitude_with_direction(
    data: tuple[ChurnModel, pd.DataFrame],
) -> None:
    model, features = data
    sample = features.head(200)
    factors = top_factors(model, sample, k=3)
    values = shap_values(model, sample)
    assert len(factors) == len(sample)
    for row, reasons in zip(values, factors, strict=True):
        assert len(reasons) == 3
        magnitudes = [abs(r["shap"]) for r in reasons]
        assert magnitudes == sorted(magnitudes, reverse=True)
        assert magnitudes[0] == pytest.approx(np.abs(row).max(), abs=1e-4)
        for reason in reasons:
            assert set(reason) == {"feature", "label", "value", "shap", "direction"}
            assert reason["direction"] == ("raises" if reason["shap"] > 0 else "lowers")
            assert reason["label"] == feature_label(reason["feature"])


def test_a_long_absence_raises_risk(data: tuple[ChurnModel, pd.DataFrame]) -> None:
    model, features = data
    absent = features.head(1).assign(
        days_since_last_session=200.0, sessions_per_week=0.0, inbound_calls_30d=0.0
    )
    reasons = top_factors(model, absent, k=3)[0]
    assert reasons[0]["feature"] == "days_since_last_session"
    assert reasons[0]["direction"] == "raises"
    assert reasons[0]["value"] == 200.0


def test_missing_values_are_reported_as_none(data: tuple[ChurnModel, pd.DataFrame]) -> None:
    model, features = data
    blank = features.head(1).assign(avg_rating_30d=np.nan)
    reasons = top_factors(model, blank, k=len(model.feature_names))[0]
    rating = next(r for r in reasons if r["feature"] == "avg_rating_30d")
    assert rating["value"] is None


def test_k_larger_than_features_and_empty_frames(data: tuple[ChurnModel, pd.DataFrame]) -> None:
    model, features = data
    assert len(top_factors(model, features.head(2), k=50)[0]) == len(model.feature_names)
    assert top_factors(model, features.head(0)) == []


def test_labels_are_readable() -> None:
    assert feature_label("inbound_calls_30d") == "Support calls (30 days)"
    assert feature_label("channel_paid_search") == "Acquired through paid search"
    assert feature_label("some_new_feature") == "Some new feature"

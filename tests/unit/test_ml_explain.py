"""Per-customer SHAP factors: ordered by impact, signed correctly, worded for people."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.churn import ChurnModel, ChurnParams, fit_churn_model
from ml.churn_reasons import QUALITY, RE_ENGAGE, SUPPORT, action, reason
from ml.explain import feature_label, plain_reasons, shap_values, top_factors


@pytest.fixture(scope="module")
def data() -> tuple[ChurnModel, pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = 3000
    features = pd.DataFrame(
        {
            "recency_days": rng.exponential(20, n),
            "recent_sessions_30d": rng.poisson(1.5, n).astype(float),
            "support_calls_30d": rng.poisson(0.3, n).astype(float),
            "rating_avg_90d": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(1, 5, n)),
            "channel_paid_search": (rng.random(n) < 0.3).astype(float),
        },
        index=pd.Index(np.arange(100, 100 + n), name="customer_id"),
    )
    logit = (
        0.1 * features["recency_days"]
        - 1.2 * features["recent_sessions_30d"]
        + 0.9 * features["support_calls_30d"]
    )
    labels = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), index=features.index)
    return fit_churn_model(features, labels, ChurnParams()), features


def test_shap_is_coef_times_centred_standardized_value(
    data: tuple[ChurnModel, pd.DataFrame],
) -> None:
    model, features = data
    standardized = model.pipeline[:-1].transform(model.align(features))
    per_column = model.pipeline[-1].coef_[0] * (standardized - standardized.mean(axis=0))
    # each feature enters as a raw and a compressed column: its SHAP value is their sum
    n = len(model.feature_names)
    expected = per_column[:, :n] + per_column[:, n:]
    np.testing.assert_allclose(shap_values(model, features), expected, atol=1e-9)


def test_shap_values_add_up_to_the_log_odds(data: tuple[ChurnModel, pd.DataFrame]) -> None:
    model, features = data
    sample = features.head(50)
    log_odds = model.log_odds(sample)
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
        for factor in reasons:
            assert set(factor) == {
                "feature",
                "label",
                "value",
                "shap",
                "direction",
                "reason",
                "action",
            }
            assert factor["direction"] == ("raises" if factor["shap"] > 0 else "lowers")
            assert factor["label"] == feature_label(factor["feature"])


def test_a_long_absence_raises_risk(data: tuple[ChurnModel, pd.DataFrame]) -> None:
    model, features = data
    absent = features.head(1).assign(
        recency_days=200.0, recent_sessions_30d=0.0, support_calls_30d=0.0
    )
    reasons = top_factors(model, absent, k=3)[0]
    assert reasons[0]["feature"] == "recency_days"
    assert reasons[0]["direction"] == "raises"
    assert reasons[0]["value"] == 200.0
    assert reasons[0]["reason"] == "no session in 200 days"
    assert reasons[0]["action"] == RE_ENGAGE
    assert plain_reasons(reasons).startswith("no session in 200 days")
    assert plain_reasons(reasons).endswith("-> " + RE_ENGAGE)


def test_missing_values_are_reported_as_none(data: tuple[ChurnModel, pd.DataFrame]) -> None:
    model, features = data
    blank = features.head(1).assign(rating_avg_90d=np.nan)
    reasons = top_factors(model, blank, k=len(model.feature_names))[0]
    rating = next(r for r in reasons if r["feature"] == "rating_avg_90d")
    assert rating["value"] is None


def test_k_larger_than_features_and_empty_frames(data: tuple[ChurnModel, pd.DataFrame]) -> None:
    model, features = data
    assert len(top_factors(model, features.head(2), k=50)[0]) == len(model.feature_names)
    assert top_factors(model, features.head(0)) == []


def test_labels_are_readable() -> None:
    assert feature_label("support_calls_30d") == "Support calls (30 days)"
    assert feature_label("channel_paid_search") == "Acquired through paid search"
    assert feature_label("some_new_feature") == "Some new feature"


@pytest.mark.parametrize(
    ("feature", "value", "raises", "words"),
    [
        ("recency_days", 23.4, True, "no session in 23 days"),
        ("recency_days", 1.0, False, "no session in 1 day"),
        ("support_calls_30d", 3.0, True, "3 support calls in the last 30 days"),
        ("rating_last", 3.14, True, "rating fell to 3.1"),
        ("rating_avg_90d", None, True, "no rated session in 90 days"),
        ("gap_ratio", 2.5, True, "current gap 2.5x their usual time between sessions"),
        ("session_trend", 0.4, True, "sessions down 60% on their earlier pace"),
        ("bookings_ahead", 0.0, True, "no session booked ahead"),
        ("tutor_changes_90d", 2.0, True, "changed tutor 2 times in 90 days"),
        ("channel_paid_search", 1.0, True, "joined through paid search"),
        ("some_new_feature", 2.0, True, "some new feature: 2"),
    ],
)
def test_reasons_in_plain_words(
    feature: str, value: float | None, raises: bool, words: str
) -> None:
    assert reason(feature, value, raises) == words


def test_each_kind_of_risk_maps_to_an_intervention() -> None:
    assert action("recency_days", raises=True) == RE_ENGAGE
    assert action("support_calls_30d", raises=True) == SUPPORT
    assert action("rating_last", raises=True) == QUALITY
    assert action("recency_days", raises=False) is None  # nothing to fix
    assert action("channel_paid_search", raises=True) is None  # nothing the team can change

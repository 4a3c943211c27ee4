"""The churn model on synthetic data with a planted signal: it must find it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.churn import ChurnModel, ChurnParams, evaluate, fit_churn_model, score, split


def synthetic(n: int = 4000, seed: int = 7) -> tuple[pd.DataFrame, pd.Series]:
    """Churn driven by recency (up) and session frequency (down); the rest is noise."""
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(
        {
            "sessions_per_week": rng.poisson(1.5, n).astype(float),
            "days_since_last_session": rng.exponential(20, n),
            "avg_rating_30d": np.where(rng.random(n) < 0.3, np.nan, rng.uniform(1, 5, n)),
            "tenure_days": rng.uniform(0, 400, n),
            "channel_organic": (rng.random(n) < 0.5).astype(float),
        },
        index=pd.Index(np.arange(1, n + 1), name="customer_id"),
    )
    logit = 0.1 * features["days_since_last_session"] - 1.5 * features["sessions_per_week"]
    labels = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), index=features.index)
    return features, labels


@pytest.fixture(scope="module")
def fitted() -> tuple[ChurnModel, pd.DataFrame, pd.Series]:
    features, labels = synthetic()
    parts = split(features, labels, ChurnParams())
    return (
        fit_churn_model(parts.x_train, parts.y_train, ChurnParams()),
        parts.x_valid,
        parts.y_valid,
    )


def test_learns_the_planted_signal(fitted: tuple[ChurnModel, pd.DataFrame, pd.Series]) -> None:
    model, x_valid, y_valid = fitted
    result = evaluate(model, x_valid, y_valid)
    assert result.roc_auc > 0.8
    assert 0 < result.pr_auc <= 1
    assert 0.5 < result.recall <= 1
    assert 0 <= result.brier < 0.25
    assert result.rows == len(x_valid)
    coef = dict(zip(model.feature_names, model.pipeline[-1].coef_[0], strict=True))
    assert coef["days_since_last_session"] > 0
    assert coef["sessions_per_week"] < 0


def test_split_is_80_20_and_stratified() -> None:
    features, labels = synthetic(1000)
    parts = split(features, labels, ChurnParams())
    assert len(parts.x_train) == 800
    assert len(parts.x_valid) == 200
    assert parts.y_train.mean() == pytest.approx(parts.y_valid.mean(), abs=0.02)
    assert set(parts.x_train.index).isdisjoint(parts.x_valid.index)


def test_rows_without_label_are_left_out() -> None:
    features, labels = synthetic(500)
    model = fit_churn_model(features, labels.iloc[:300], ChurnParams())
    assert model.pipeline[-1].n_features_in_ == features.shape[1]
    assert evaluate(model, features, labels.iloc[:300]).rows == 300


def test_score_keeps_the_index_and_aligns_columns(
    fitted: tuple[ChurnModel, pd.DataFrame, pd.Series],
) -> None:
    model, x_valid, _ = fitted
    sample = x_valid.head(5)
    # A scoring frame may lack a channel column and carry unknown ones, in any order.
    shuffled = sample.drop(columns=["channel_organic"]).assign(channel_new=1.0)
    shuffled = shuffled[shuffled.columns[::-1]]
    aligned = score(model, shuffled)
    assert list(aligned.index) == list(sample.index)
    assert aligned.name == "churn_probability"
    assert ((aligned >= 0) & (aligned <= 1)).all()
    no_organic = sample.assign(channel_organic=0.0)
    pd.testing.assert_series_equal(aligned, score(model, no_organic))


def test_missing_values_are_imputed(fitted: tuple[ChurnModel, pd.DataFrame, pd.Series]) -> None:
    model, x_valid, _ = fitted
    blank = x_valid.head(3).assign(avg_rating_30d=np.nan)
    assert score(model, blank).notna().all()


def test_a_single_class_cannot_be_fitted() -> None:
    features, labels = synthetic(100)
    with pytest.raises(ValueError, match="single class"):
        fit_churn_model(features, labels * 0, ChurnParams())


def test_model_rebuilds_from_its_pipeline(
    fitted: tuple[ChurnModel, pd.DataFrame, pd.Series],
) -> None:
    model, _, _ = fitted
    assert ChurnModel.from_pipeline(model.pipeline).feature_names == model.feature_names

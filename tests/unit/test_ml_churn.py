"""The churn model on synthetic data with a planted signal: it must find it, and its
probabilities must mean what they say."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.churn import (
    OTHER_CHANNEL,
    ChurnModel,
    ChurnParams,
    evaluate,
    fit_churn_model,
    recalibrate,
    score,
)


def synthetic(n: int = 4000, seed: int = 7, shift: float = 0.0) -> tuple[pd.DataFrame, pd.Series]:
    """Churn driven by recency (up) and session frequency (down); the rest is noise. About a
    quarter churn: an unbalanced problem, like the real one. `shift` moves the base rate."""
    rng = np.random.default_rng(seed)
    channel = rng.choice(
        ["organic", "paid", "referral", "tv", "radio"], n, p=[0.4, 0.3, 0.2, 0.07, 0.03]
    )
    features = pd.DataFrame(
        {
            "recent_sessions_30d": rng.poisson(1.5, n).astype(float),
            "recency_days": rng.exponential(20, n),
            "rating_avg_90d": np.where(rng.random(n) < 0.3, np.nan, rng.uniform(1, 5, n)),
            "customer_age_days": rng.uniform(0, 400, n),
        },
        index=pd.Index(np.arange(1, n + 1), name="customer_id"),
    )
    for name in ("organic", "paid", "referral", "tv", "radio"):
        features[f"channel_{name}"] = (channel == name).astype(float)
    logit = -1.5 + 0.06 * features["recency_days"] - 0.8 * features["recent_sessions_30d"] + shift
    labels = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), index=features.index)
    return features, labels


@pytest.fixture(scope="module")
def fitted() -> tuple[ChurnModel, pd.DataFrame, pd.Series]:
    features, labels = synthetic()
    valid_x, valid_y = synthetic(3000, seed=8)
    return fit_churn_model(features, labels, ChurnParams()), valid_x, valid_y


def test_learns_the_planted_signal(fitted: tuple[ChurnModel, pd.DataFrame, pd.Series]) -> None:
    model, x_valid, y_valid = fitted
    result = evaluate(model, x_valid, y_valid)
    assert result.roc_auc > 0.8
    assert 0 < result.pr_auc <= 1
    assert result.rows == len(x_valid)
    sample = x_valid.head(200)
    base = score(model, sample)
    assert (score(model, sample.assign(recency_days=sample["recency_days"] + 30)) > base).all()
    more = sample.assign(recent_sessions_30d=sample["recent_sessions_30d"] + 2)
    assert (score(model, more) < base).all()


def test_probabilities_are_calibrated(fitted: tuple[ChurnModel, pd.DataFrame, pd.Series]) -> None:
    """Brier below always predicting the base rate, and the mean probability is the churn
    rate: no class weights inflating every probability."""
    model, x_valid, y_valid = fitted
    result = evaluate(model, x_valid, y_valid)
    assert result.brier < result.brier_base_rate
    assert score(model, x_valid).mean() == pytest.approx(y_valid.mean(), abs=0.03)
    riskiest = score(model, x_valid) >= 0.8
    assert riskiest.sum() > 20
    assert y_valid[riskiest].mean() == pytest.approx(0.85, abs=0.1)


def test_recalibration_follows_a_shifted_base_rate(
    fitted: tuple[ChurnModel, pd.DataFrame, pd.Series],
) -> None:
    """Trained in one period, applied in a later one where more customers churn: Platt on the
    later (out-of-time) fold brings the mean back to the new rate without changing ranking."""
    model, _, _ = fitted
    later_x, later_y = synthetic(4000, seed=9, shift=1.0)
    before = evaluate(model, later_x, later_y)
    after_model = recalibrate(model, later_x, later_y)
    after = evaluate(after_model, later_x, later_y)
    assert after.roc_auc == pytest.approx(before.roc_auc)
    assert after.brier < before.brier
    assert score(after_model, later_x).mean() == pytest.approx(later_y.mean(), abs=0.02)


def test_threshold_is_stored_and_meets_the_minimum_precision(
    fitted: tuple[ChurnModel, pd.DataFrame, pd.Series],
) -> None:
    model, x_valid, y_valid = fitted
    assert 0 < model.threshold < 1
    result = evaluate(model, x_valid, y_valid)
    assert result.threshold == model.threshold
    assert result.precision >= 0.45  # chosen at 0.5 on out-of-fold rows, checked on new rows
    assert 0 < result.flagged_rate < 0.5
    assert result.recall > 0.3


def test_top_channels_and_other(fitted: tuple[ChurnModel, pd.DataFrame, pd.Series]) -> None:
    features, labels = synthetic()
    model = fit_churn_model(features, labels, ChurnParams(top_channels=2, calibration_folds=0))
    channels = [c for c in model.feature_names if c.startswith("channel_")]
    assert channels == ["channel_organic", "channel_paid", OTHER_CHANNEL]
    aligned = model.align(features.head(50))
    expected_other = features.head(50)[["channel_referral", "channel_tv", "channel_radio"]].sum(
        axis=1
    )
    pd.testing.assert_series_equal(aligned[OTHER_CHANNEL], expected_other, check_names=False)
    # A channel never seen in training counts as other.
    new = features.head(1).drop(columns=["channel_organic", "channel_paid"])
    new = new.assign(channel_referral=0.0, channel_tv=0.0, channel_radio=0.0, channel_podcast=1.0)
    assert model.align(new)[OTHER_CHANNEL].iloc[0] == 1.0


def test_score_keeps_the_index_and_aligns_columns(
    fitted: tuple[ChurnModel, pd.DataFrame, pd.Series],
) -> None:
    model, x_valid, _ = fitted
    sample = x_valid.head(5)
    shuffled = sample.drop(columns=["channel_organic"]).assign(unrelated=1.0)
    shuffled = shuffled[shuffled.columns[::-1]]
    aligned = score(model, shuffled)
    assert list(aligned.index) == list(sample.index)
    assert aligned.name == "churn_probability"
    assert ((aligned >= 0) & (aligned <= 1)).all()
    pd.testing.assert_series_equal(aligned, score(model, sample.assign(channel_organic=0.0)))


def test_missing_values_are_imputed(fitted: tuple[ChurnModel, pd.DataFrame, pd.Series]) -> None:
    model, x_valid, _ = fitted
    assert score(model, x_valid.head(3).assign(rating_avg_90d=np.nan)).notna().all()


def test_rows_without_label_are_left_out() -> None:
    features, labels = synthetic(500)
    model = fit_churn_model(features, labels.iloc[:300], ChurnParams())
    assert evaluate(model, features, labels.iloc[:300]).rows == 300


def test_large_training_sets_are_sampled() -> None:
    features, labels = synthetic(1000)
    model = fit_churn_model(features, labels, ChurnParams(max_fit_rows=400, calibration_folds=0))
    assert model.pipeline[-1].n_features_in_ > 0
    assert model.pipeline.named_steps["scale"].n_samples_seen_ == 400


def test_a_single_class_cannot_be_fitted() -> None:
    features, labels = synthetic(100)
    with pytest.raises(ValueError, match="single class"):
        fit_churn_model(features, labels * 0, ChurnParams())


def test_gradient_boosting_challenger_fits_and_ranks() -> None:
    features, labels = synthetic()
    valid_x, valid_y = synthetic(2000, seed=8)
    model = fit_churn_model(
        features, labels, ChurnParams(kind="hgb", boosting_rounds=60, calibration_folds=2)
    )
    assert model.kind == "hgb"
    result = evaluate(model, valid_x, valid_y)
    assert result.roc_auc > 0.75
    assert result.brier < result.brier_base_rate


def test_model_rebuilds_from_its_pipeline(
    fitted: tuple[ChurnModel, pd.DataFrame, pd.Series],
) -> None:
    model, x_valid, _ = fitted
    rebuilt = ChurnModel.from_pipeline(model.pipeline, model.calibration, model.threshold)
    assert rebuilt.feature_names == model.feature_names
    assert rebuilt.kind == "logreg"
    pd.testing.assert_series_equal(score(rebuilt, x_valid), score(model, x_valid))

"""Promotion and threshold rules of the churn model, on scores whose quality we control."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ml.churn_metrics import (
    AucComparison,
    _tie_groups,
    _weighted_auc,
    choose_threshold,
    evaluate_probabilities,
    paired_auc_gain,
    reliability_curve,
    segment_calibration,
    threshold_table,
)


def scored(n: int = 4000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes and a score that ranks them fairly well (AUC about 0.8)."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < 0.25).astype(int)
    return truth, truth * 1.2 + rng.normal(0, 1, n)


def test_a_worse_model_never_replaces_the_champion() -> None:
    truth, champion = scored()
    rng = np.random.default_rng(2)
    worse = champion + rng.normal(0, 1.0, len(truth))  # the champion's signal, diluted
    comparison = paired_auc_gain(truth, champion, worse)
    assert comparison.gain < 0
    assert not comparison.candidate_wins


def test_a_model_no_better_than_the_champion_does_not_replace_it() -> None:
    truth, champion = scored()
    same_ranking = np.exp(champion)  # a different scale, the same order
    comparison = paired_auc_gain(truth, champion, same_ranking)
    assert comparison.gain == pytest.approx(0.0)
    assert not comparison.candidate_wins


def test_a_clearly_better_model_replaces_the_champion() -> None:
    truth, champion = scored()
    rng = np.random.default_rng(3)
    better = truth * 2.0 + rng.normal(0, 1, len(truth))
    comparison = paired_auc_gain(truth, champion, better)
    assert comparison.lower > 0
    assert comparison.gain > comparison.margin
    assert comparison.candidate_wins


def test_a_gain_below_the_margin_is_not_enough() -> None:
    base = AucComparison(0.80, 0.804, 0.004, 0.001, 0.007, margin=0.005, rows=1000)
    assert not base.candidate_wins
    noisy = AucComparison(0.80, 0.83, 0.03, -0.002, 0.06, margin=0.005, rows=1000)
    assert not noisy.candidate_wins  # interval reaches below zero
    unknown = AucComparison(*(float("nan"),) * 5, margin=0.005, rows=0)
    assert not unknown.candidate_wins


def test_bootstrap_auc_with_weights_matches_sklearn() -> None:
    truth, score = scored(500)
    rounded = np.round(score, 1)  # with ties
    weights = np.random.default_rng(4).integers(0, 3, len(truth))
    expected = roc_auc_score(truth, rounded, sample_weight=weights)
    assert _weighted_auc(truth, weights, _tie_groups(rounded)) == pytest.approx(expected)


def test_threshold_reaches_the_minimum_precision_with_the_most_recall() -> None:
    truth, score = scored()
    proba = 1 / (1 + np.exp(-(score - 1.5)))
    choice = choose_threshold(truth, proba, min_precision=0.6)
    assert choice.meets_min_precision
    assert choice.precision >= 0.6
    flagged = proba >= choice.threshold
    assert truth[flagged].mean() == pytest.approx(choice.precision)
    # Any lower threshold either misses the precision or is the same cut.
    lower = proba >= np.nextafter(choice.threshold, 0) - 0.02
    assert truth[lower].mean() < 0.6 or lower.sum() == flagged.sum()


def test_threshold_when_no_cut_is_precise_enough() -> None:
    truth, _ = scored()
    noise = np.random.default_rng(5).random(len(truth))
    choice = choose_threshold(truth, noise, min_precision=0.9)
    assert not choice.meets_min_precision
    assert 0 <= choice.threshold <= 1


def test_evaluation_against_the_base_rate() -> None:
    truth, score = scored()
    base = np.full(len(truth), truth.mean())
    result = evaluate_probabilities(truth, base, 0.5)
    assert result.brier == pytest.approx(result.brier_base_rate)
    assert result.flagged_rate == 0
    table = threshold_table(truth, 1 / (1 + np.exp(-score)))
    assert list(table.columns) == ["threshold", "flagged", "flagged_rate", "precision", "recall"]
    assert table["flagged"].is_monotonic_decreasing
    curve = reliability_curve(truth, 1 / (1 + np.exp(-score)))
    assert len(curve) == 10
    assert curve["observed_rate"].iloc[-1] > curve["observed_rate"].iloc[0]


def test_threshold_never_flags_more_than_the_team_can_call() -> None:
    """A very precise top lets a recall-first rule flag far too many; capacity caps it."""
    truth, score = scored()
    proba = 1 / (1 + np.exp(-(score - 1.5)))
    loose = choose_threshold(truth, proba, min_precision=0.3, max_flagged_rate=1.0)
    capped = choose_threshold(truth, proba, min_precision=0.3, max_flagged_rate=0.1)
    assert loose.flagged_rate > 0.1
    assert capped.flagged_rate <= 0.1
    assert capped.threshold > loose.threshold
    assert capped.precision >= 0.3


def test_segment_calibration_shows_a_segment_the_overall_figure_hides() -> None:
    # Overall 0.5 predicted and 0.5 observed, but the first segment is under- and the second
    # over-predicted: only the per-segment figures show it.
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    proba = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    first = np.array([True, True, True, True, False, False, False, False])
    out = segment_calibration(truth, proba, {"a": first, "b": ~first, "none": np.zeros(8, bool)})
    assert out["segment_a_share"] == 0.5
    assert out["segment_a_predicted"] == pytest.approx(0.5)
    assert out["segment_a_observed"] == pytest.approx(0.75)
    assert out["segment_b_observed"] == pytest.approx(0.25)
    assert out["segment_none_share"] == 0.0
    assert np.isnan(out["segment_none_predicted"])
    assert np.isnan(out["segment_none_observed"])

"""Out-of-time training of the churn model and the choice between model families.

Pure (frames in, results out); `ml.jobs` loads the frames and registers the result.

Validation is out of time: with `newest` the newest session, the holdout is the population at
`valid_cutoff = newest - horizon` with labels in (valid_cutoff, newest]. Training stacks the
populations at cut-offs `valid_cutoff - horizon`, then every `step_days` earlier, so no training
label looks into the holdout's period (the "T-60d" rule). Only when history is too short for
that does training fall back to one earlier cut-off whose labels overlap the holdout's period;
the plan says so (`out_of_time` False).

The holdout also calibrates the chosen model. Its reported metrics use cross-fitted
probabilities (each half of the holdout calibrated on the other half), so the Brier score is
not measured on the rows the calibration was fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from ml.churn import (
    ChurnModel,
    ChurnParams,
    fit_churn_model,
    fit_platt,
    joined,
    recalibrate,
)
from ml.churn_baselines import BaselineGains, baseline_gains
from ml.churn_metrics import (
    CHALLENGER_MARGIN,
    AucComparison,
    Evaluation,
    evaluate_probabilities,
    paired_auc_gain,
)
from ml.features import HISTORY_FEATURES, choose_training_window

# Rows used for a paired bootstrap: enough for a tight interval, bounded in time at S10.
MAX_COMPARISON_ROWS = 200_000
# Customers per cut-off a training run reads: beyond this a sample of customers (the same at
# every cut-off, holdout included) stands for the population. A logistic regression on ~25
# features, or the boosted challenger, learns no better ranking from more rows than 3 cut-offs
# of this many, while every row costs feature SQL and fitting time (at a million customers the
# four cut-offs held 1.04 M rows, and training took 98-142 s). Scoring reads everyone.
MAX_CUSTOMERS_PER_CUTOFF = 100_000


@dataclass(frozen=True)
class CutoffPlan:
    """Where to cut history: training populations, the holdout population, the horizon."""

    train_cutoffs: tuple[datetime, ...]
    valid_cutoff: datetime
    horizon_days: int
    out_of_time: bool


@dataclass(frozen=True)
class Selection:
    """The model chosen on the holdout and the evidence for it."""

    model: ChurnModel
    evaluation: Evaluation
    holdout_truth: np.ndarray
    holdout_proba: np.ndarray
    challenger: AucComparison
    runner_up_evaluation: Evaluation
    # The chosen model against recency alone and an RFM logistic regression (same rows).
    baselines: BaselineGains | None = None


def plan_cutoffs(
    oldest: datetime,
    newest: datetime,
    horizon_days: int = 60,
    min_history_days: int = 28,
    step_days: int = 28,
    max_train_cutoffs: int = 3,
) -> CutoffPlan:
    """Training and holdout cut-offs for data spanning [oldest, newest] (see module doc)."""
    window = choose_training_window(oldest, newest, horizon_days, min_history_days)
    valid = window.as_of
    horizon = window.horizon_days
    earliest = oldest + timedelta(days=min_history_days)
    cutoffs = [
        valid - timedelta(days=horizon + k * step_days)
        for k in range(max_train_cutoffs)
        if valid - timedelta(days=horizon + k * step_days) >= earliest
    ]
    if cutoffs:
        return CutoffPlan(tuple(sorted(cutoffs)), valid, horizon, out_of_time=True)
    # Too short for a gap: one cut-off halfway between the first session and the holdout's.
    fallback = oldest + (valid - oldest) / 2
    return CutoffPlan((fallback,), valid, horizon, out_of_time=False)


@dataclass(frozen=True)
class HistoryFeatures:
    """Which history-read attributes a training run uses, and why any are left out."""

    used: tuple[str, ...]
    uncovered: dict[str, tuple[datetime, ...]]

    def note(self) -> str:
        """One line for the run's parameters."""
        if not self.uncovered:
            return "every cut-off covered by the customer history"
        return "; ".join(
            f"{name} left out: the customer history does not cover "
            + ", ".join(t.isoformat() for t in cutoffs)
            for name, cutoffs in self.uncovered.items()
        )


def agree_on_history_features(
    frames: dict[datetime, pd.DataFrame],
) -> tuple[dict[datetime, pd.DataFrame], HistoryFeatures]:
    """The feature frames of every cut-off (training and holdout) with the same attributes: a
    history-read attribute (`HISTORY_FEATURES`) stays only when every frame has it, i.e. the
    history covered every cut-off. A model trained where it was known and validated where it
    was not (or the reverse) would learn and be judged on two different things."""
    uncovered = {
        name: tuple(sorted(t for t, frame in frames.items() if name not in frame.columns))
        for name in HISTORY_FEATURES
    }
    uncovered = {name: cutoffs for name, cutoffs in uncovered.items() if cutoffs}
    used = tuple(name for name in HISTORY_FEATURES if name not in uncovered)
    dropped = list(uncovered)
    agreed = {t: frame.drop(columns=dropped, errors="ignore") for t, frame in frames.items()}
    return agreed, HistoryFeatures(used=used, uncovered=uncovered)


def stack(frames: dict[datetime, pd.DataFrame]) -> pd.DataFrame:
    """Feature frames at several cut-offs as one frame indexed by (cutoff, customer_id)."""
    return pd.concat(frames, names=["cutoff", "customer_id"])


def stack_labels(labels: dict[datetime, pd.Series]) -> pd.Series:
    """Labels at several cut-offs as one series indexed by (cutoff, customer_id)."""
    return pd.concat(labels, names=["cutoff", "customer_id"])


def cross_fitted_probabilities(
    model: ChurnModel,
    features: pd.DataFrame,
    labels: pd.Series,
    seed: int = 0,
    log_odds: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(truth, probability) on the labelled rows, each half calibrated on the other half.
    `log_odds`: the model's on the labelled rows, when the caller has them already."""
    x, y = joined(features, labels)
    truth = y.to_numpy()
    if log_odds is None:
        log_odds = model.log_odds(x)
    proba = np.empty(len(truth), dtype="float64")
    halves = np.random.default_rng(seed).permutation(len(truth)) % 2
    for half in (0, 1):
        fit_rows, out_rows = halves != half, halves == half
        calibration = fit_platt(log_odds[fit_rows], truth[fit_rows])
        proba[out_rows] = calibration.apply(log_odds[out_rows])
    return truth, proba


def select_model(
    train_x: pd.DataFrame,
    train_y: pd.Series,
    valid_x: pd.DataFrame,
    valid_y: pd.Series,
    params: ChurnParams | None = None,
    challenger_params: ChurnParams | None = None,
    margin: float = CHALLENGER_MARGIN,
) -> Selection:
    """Fit the logistic regression and the gradient-boosting challenger on the training rows,
    score both on the same holdout rows, keep the logistic regression unless the challenger's
    paired-bootstrap ROC-AUC gain clears `margin`; calibrate the chosen one on the holdout, and
    compare it with the recency and RFM baselines on the same rows (`ml.churn_baselines`)."""
    params = replace(params or ChurnParams(), kind="logreg", calibration_folds=0)
    challenger_params = replace(
        challenger_params or ChurnParams(kind="hgb"), kind="hgb", calibration_folds=0
    )
    linear = fit_churn_model(train_x, train_y, params)
    boosted = fit_churn_model(train_x, train_y, challenger_params)
    x, y = joined(valid_x, valid_y)
    # Each model's log-odds on the holdout, once: comparison, calibration and cross-fitting
    # all read them (six passes before, ~5 s each at a million customers).
    linear_odds, boosted_odds = linear.log_odds(x), boosted.log_odds(x)
    sample = _comparison_rows(len(y), params.random_state)
    comparison = paired_auc_gain(
        y.to_numpy()[sample],
        linear_odds[sample],
        boosted_odds[sample],
        margin=margin,
        seed=params.random_state,
    )
    chosen, chosen_params, chosen_odds, other, other_odds = (
        (boosted, challenger_params, boosted_odds, linear, linear_odds)
        if comparison.candidate_wins
        else (linear, params, linear_odds, boosted, boosted_odds)
    )
    rule = (chosen_params.min_precision, chosen_params.max_flagged_rate)
    final = recalibrate(chosen, x, y, *rule, log_odds=chosen_odds)
    truth, proba = cross_fitted_probabilities(chosen, x, y, params.random_state, chosen_odds)
    baselines = baseline_gains(
        train_x,
        train_y,
        x.iloc[sample],
        y.to_numpy()[sample],
        chosen_odds[sample],
        seed=params.random_state,
    )
    other_final = recalibrate(other, x, y, *rule, log_odds=other_odds)
    other_truth, other_proba = cross_fitted_probabilities(
        other, x, y, params.random_state, other_odds
    )
    return Selection(
        model=final,
        evaluation=evaluate_probabilities(truth, proba, final.threshold),
        holdout_truth=truth,
        holdout_proba=proba,
        challenger=comparison,
        runner_up_evaluation=evaluate_probabilities(
            other_truth, other_proba, other_final.threshold
        ),
        baselines=baselines,
    )


def _comparison_rows(rows: int, seed: int) -> np.ndarray:
    if rows <= MAX_COMPARISON_ROWS:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, MAX_COMPARISON_ROWS, replace=False))

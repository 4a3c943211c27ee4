"""How good a churn model is, and whether one is better than another, from scores on rows
whose outcome is known. Pure numpy/sklearn: no model objects, no I/O.

- `evaluate_probabilities`: ROC-AUC, PR-AUC, precision/recall at a threshold, Brier score and
  the Brier score of always predicting the base rate (the bar a calibrated model must clear).
- `choose_threshold`: the highest-recall threshold whose precision is at least a stated
  minimum (the seed optimizes recall; the minimum keeps the call list worth calling).
- `threshold_table`, `reliability_curve`: what MLflow shows beside the model.
- `segment_calibration`: mean predicted vs observed churn per segment (customers without a
  completed session yet vs the rest): a model calibrated overall can still be off for a
  segment it cannot tell apart.
- `paired_auc_gain`: a paired bootstrap of the ROC-AUC gain of one model over another,
  scored on the same rows; `should_replace` applies the promotion rule to it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

# The default minimum precision at the decision threshold: at least one in two customers the
# team calls would otherwise have churned.
MIN_PRECISION = 0.5
# At most this share of customers is flagged: the team's calling capacity (the "top-k" the
# issue allows). Without it, calibrated scores with a very precise top let a recall-first
# rule flag half the customers at a low probability.
MAX_FLAGGED_RATE = 0.2
# A threshold must flag at least this many rows, so a lucky handful never sets it.
MIN_FLAGGED = 20
# A replacement must beat the serving model by this much ROC-AUC (with the bootstrap interval's
# lower bound above zero). For a challenger of another family it is the price of giving up
# the logistic regression's readable coefficients.
PROMOTION_MARGIN = 0.005
CHALLENGER_MARGIN = 0.01


@dataclass(frozen=True)
class Evaluation:
    """Holdout metrics; precision and recall are at `threshold`."""

    roc_auc: float
    pr_auc: float
    recall: float
    precision: float
    flagged_rate: float
    threshold: float
    brier: float
    brier_base_rate: float
    rows: int
    positive_rate: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ThresholdChoice:
    """A decision threshold and what it does on the rows it was chosen on."""

    threshold: float
    precision: float
    recall: float
    flagged_rate: float
    meets_min_precision: bool


@dataclass(frozen=True)
class AucComparison:
    """ROC-AUC of a candidate minus a baseline on the same rows, with a bootstrap interval."""

    baseline_auc: float
    candidate_auc: float
    gain: float
    lower: float
    upper: float
    margin: float
    rows: int

    @property
    def candidate_wins(self) -> bool:
        """The promotion rule: the interval's lower bound is above zero and the gain exceeds
        the margin. Anything else, including an unknown gain, keeps the baseline."""
        return bool(self.lower > 0 and self.gain > self.margin)

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def evaluate_probabilities(truth: np.ndarray, proba: np.ndarray, threshold: float) -> Evaluation:
    """The holdout metrics of probabilities `proba` for outcomes `truth` (0/1)."""
    truth = np.asarray(truth, dtype="int64")
    proba = np.asarray(proba, dtype="float64")
    both = len(np.unique(truth)) > 1
    flagged = proba >= threshold
    hits = int((flagged & (truth == 1)).sum())
    positives = int(truth.sum())
    base = float(truth.mean()) if len(truth) else float("nan")
    return Evaluation(
        roc_auc=float(roc_auc_score(truth, proba)) if both else float("nan"),
        pr_auc=float(average_precision_score(truth, proba)) if both else float("nan"),
        recall=hits / positives if positives else float("nan"),
        precision=hits / int(flagged.sum()) if flagged.any() else float("nan"),
        flagged_rate=float(flagged.mean()) if len(truth) else float("nan"),
        threshold=float(threshold),
        brier=float(brier_score_loss(truth, proba)) if len(truth) else float("nan"),
        brier_base_rate=base * (1 - base),
        rows=len(truth),
        positive_rate=base,
    )


def choose_threshold(
    truth: np.ndarray,
    proba: np.ndarray,
    min_precision: float = MIN_PRECISION,
    max_flagged_rate: float = MAX_FLAGGED_RATE,
) -> ThresholdChoice:
    """The lowest threshold (so the highest recall) at which the flagged rows have at least
    `min_precision` precision, among thresholds that flag at least MIN_FLAGGED rows and at
    most `max_flagged_rate` of them. When no threshold reaches the precision, the one with the
    best precision (meets_min_precision False)."""
    truth = np.asarray(truth, dtype="int64")
    proba = np.asarray(proba, dtype="float64")
    if len(truth) == 0 or truth.sum() == 0:
        return ThresholdChoice(0.5, float("nan"), float("nan"), float("nan"), False)
    order = np.argsort(-proba, kind="stable")
    sorted_p = proba[order]
    hits = np.cumsum(truth[order])
    flagged = np.arange(1, len(truth) + 1)
    # Only cut between distinct probabilities: the last row of each run of ties.
    last_of_tie = np.r_[sorted_p[1:] != sorted_p[:-1], True]
    enough = flagged >= min(MIN_FLAGGED, len(truth))
    within = flagged <= max(max_flagged_rate * len(truth), MIN_FLAGGED)
    candidates = np.flatnonzero(last_of_tie & enough & within)
    if len(candidates) == 0:  # one tie run covers everything: flag it all or nothing
        candidates = np.flatnonzero(last_of_tie)[:1]
    precision = hits / flagged
    recall = hits / truth.sum()
    ok = candidates[precision[candidates] >= min_precision]
    meets = len(ok) > 0
    pool, by = (ok, recall) if meets else (candidates, precision)
    best = pool[np.argmax(by[pool])]
    return ThresholdChoice(
        threshold=float(sorted_p[best]),
        precision=float(precision[best]),
        recall=float(recall[best]),
        flagged_rate=float(flagged[best] / len(truth)),
        meets_min_precision=meets,
    )


def threshold_table(
    truth: np.ndarray, proba: np.ndarray, thresholds: np.ndarray | None = None
) -> pd.DataFrame:
    """Threshold -> customers flagged, share flagged, precision, recall."""
    truth = np.asarray(truth, dtype="int64")
    proba = np.asarray(proba, dtype="float64")
    grid = np.round(np.arange(0.05, 1.0, 0.05), 2) if thresholds is None else thresholds
    rows = []
    positives = max(int(truth.sum()), 1)
    for t in grid:
        flagged = proba >= t
        hits = int((flagged & (truth == 1)).sum())
        rows.append(
            {
                "threshold": float(t),
                "flagged": int(flagged.sum()),
                "flagged_rate": float(flagged.mean()) if len(truth) else float("nan"),
                "precision": hits / int(flagged.sum()) if flagged.any() else float("nan"),
                "recall": hits / positives,
            }
        )
    return pd.DataFrame(rows)


def segment_calibration(
    truth: np.ndarray, proba: np.ndarray, segments: dict[str, np.ndarray]
) -> dict[str, float]:
    """For each named boolean mask over the rows: its share of rows, mean predicted and
    observed churn (`segment_<name>_share`, `_predicted`, `_observed`; NaN for an empty one)."""
    truth = np.asarray(truth, dtype="float64")
    proba = np.asarray(proba, dtype="float64")
    out: dict[str, float] = {}
    for name, mask in segments.items():
        rows = np.asarray(mask, dtype=bool)
        count = int(rows.sum())
        out[f"segment_{name}_share"] = count / len(rows) if len(rows) else float("nan")
        out[f"segment_{name}_predicted"] = float(proba[rows].mean()) if count else float("nan")
        out[f"segment_{name}_observed"] = float(truth[rows].mean()) if count else float("nan")
    return out


def reliability_curve(truth: np.ndarray, proba: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Rows grouped into `bins` equal-count bins of predicted probability: mean predicted vs
    observed churn rate per bin. A calibrated model has the two close in every bin."""
    frame = pd.DataFrame({"truth": np.asarray(truth), "proba": np.asarray(proba)})
    if frame.empty:
        return pd.DataFrame(columns=["bin", "rows", "mean_predicted", "observed_rate"])
    frame["bin"] = pd.qcut(frame["proba"].rank(method="first"), bins, labels=False)
    out = frame.groupby("bin").agg(
        rows=("truth", "size"), mean_predicted=("proba", "mean"), observed_rate=("truth", "mean")
    )
    return out.reset_index()


def paired_auc_gain(
    truth: np.ndarray,
    baseline: np.ndarray,
    candidate: np.ndarray,
    margin: float = PROMOTION_MARGIN,
    resamples: int = 500,
    confidence: float = 0.95,
    seed: int = 0,
) -> AucComparison:
    """ROC-AUC gain of `candidate` over `baseline`, both scores of the same rows `truth`:
    the rows are resampled together, so the interval reflects the difference, not each
    model's own noise."""
    truth = np.asarray(truth, dtype="int64")
    baseline = np.asarray(baseline, dtype="float64")
    candidate = np.asarray(candidate, dtype="float64")
    if len(np.unique(truth)) < 2:
        nan = float("nan")
        return AucComparison(nan, nan, nan, nan, nan, margin, len(truth))
    base_auc = float(roc_auc_score(truth, baseline))
    cand_auc = float(roc_auc_score(truth, candidate))
    rng = np.random.default_rng(seed)
    base_groups, cand_groups = _tie_groups(baseline), _tie_groups(candidate)
    gains = []
    for _ in range(resamples):
        weights = np.bincount(rng.integers(0, len(truth), len(truth)), minlength=len(truth))
        gain = _weighted_auc(truth, weights, cand_groups) - _weighted_auc(
            truth, weights, base_groups
        )
        if gain == gain:  # a resample with a single class has no AUC
            gains.append(gain)
    tail = (1 - confidence) / 2
    lower, upper = (
        (float(np.quantile(gains, tail)), float(np.quantile(gains, 1 - tail)))
        if gains
        else (float("nan"), float("nan"))
    )
    return AucComparison(
        baseline_auc=base_auc,
        candidate_auc=cand_auc,
        gain=cand_auc - base_auc,
        lower=lower,
        upper=upper,
        margin=margin,
        rows=len(truth),
    )


def churn_rate_by_decile(truth: np.ndarray, proba: np.ndarray) -> pd.DataFrame:
    """Observed churn rate per decile of score (decile 10 = riskiest)."""
    curve = reliability_curve(truth, proba, bins=10)
    curve["decile"] = curve["bin"] + 1
    return curve[["decile", "rows", "mean_predicted", "observed_rate"]]


def _tie_groups(scores: np.ndarray) -> tuple[np.ndarray, int]:
    """Each row's rank among the distinct scores (ties share one), and how many there are."""
    distinct, inverse = np.unique(scores, return_inverse=True)
    return inverse, len(distinct)


def _weighted_auc(truth: np.ndarray, weights: np.ndarray, groups: tuple[np.ndarray, int]) -> float:
    """ROC-AUC with row weights (bootstrap counts) in O(rows): per distinct score, the weight
    of negatives below it, ties counting one half."""
    inverse, size = groups
    pos = np.bincount(inverse, weights=weights * truth, minlength=size)
    neg = np.bincount(inverse, weights=weights * (1 - truth), minlength=size)
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos == 0 or total_neg == 0:
        return float("nan")
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / (total_pos * total_neg))

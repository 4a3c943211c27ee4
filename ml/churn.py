"""The churn model: a calibrated classifier over point-in-time features.

Pure functions over DataFrames (no database, no MLflow): fit, calibrate, score, evaluate.

- The champion family is a logistic regression on each feature both as it is and
  arcsinh-compressed (counts and durations are heavy-tailed; arcsinh is a signed log that keeps
  0 at 0), standardized: each feature's effect can bend between linear and logarithmic and
  the model stays additive, so every feature's contribution is still one readable number. It
  is fitted without class weights: reweighting shifts every probability and does not improve
  ranking for a linear model, and the calibrated probability is what people read.
- The challenger family is a HistGradientBoostingClassifier on the same raw features.
- Probabilities are Platt-calibrated on the model's log-odds: on an out-of-time fold when the
  caller has one (`recalibrate`), otherwise on out-of-fold predictions of the training rows.
  Calibration is monotone, so it never changes the ranking (ROC-AUC).
- The decision threshold is the one with the highest recall whose precision is at least
  `min_precision` on the calibration rows, flagging at most `max_flagged_rate` of them (the
  team's calling capacity; see `ml.churn_metrics.choose_threshold`); it is stored with the
  model.
- Fitting and scoring use at most the cores that are free (`compute_threads`): sklearn's
  OpenMP and BLAS threads spin-wait for each other, so asking for more threads than the
  machine has free turns time-slicing into a many-fold slowdown (gradient boosting on 100k
  rows: 549 s wall with 2 threads against 43 s with 1 at load ~25 on 2 cores).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ml.churn_metrics import (
    MAX_FLAGGED_RATE,
    MIN_PRECISION,
    Evaluation,
    choose_threshold,
    evaluate_probabilities,
)
from ml.features import CHANNEL_PREFIX

OTHER_CHANNEL = CHANNEL_PREFIX + "other"
ModelKind = Literal["logreg", "hgb"]
# Overrides the thread count `compute_threads` picks (a positive integer).
THREADS_ENV = "OPSDASH_ML_THREADS"


def compute_threads() -> int:
    """Threads for numerical work: $OPSDASH_ML_THREADS when set, else the cores not already
    busy by the 1-minute load average (this process's own share counted as free), at least 1."""
    configured = os.environ.get(THREADS_ENV, "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return cores
    return max(1, min(cores, int(cores + 1 - busy)))


@contextlib.contextmanager
def limited_threads() -> Iterator[None]:
    """OpenMP and BLAS thread pools limited to `compute_threads()` inside the block."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=compute_threads()):
        yield


@dataclass(frozen=True)
class ChurnParams:
    """Hyper-parameters, logged to MLflow as run parameters."""

    kind: ModelKind = "logreg"
    c: float = 1.0
    max_iter: int = 1000
    # Gradient boosting (the challenger): shallow trees, early stopping on 10% of the rows.
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    boosting_rounds: int = 400
    l2_regularization: float = 1.0
    # Acquisition channels kept as their own column; the rest count as `channel_other`.
    top_channels: int = 8
    # Out-of-fold calibration when no out-of-time fold is given (0 = leave uncalibrated).
    calibration_folds: int = 5
    # Rows a fit uses at most (a random sample beyond that): weekly training stays within
    # minutes at a million customers times several cut-offs, at no measurable loss of ranking.
    max_fit_rows: int = 600_000
    # The decision threshold: highest recall with at least this precision, flagging at most
    # this share of customers (the team's calling capacity).
    min_precision: float = MIN_PRECISION
    max_flagged_rate: float = MAX_FLAGGED_RATE
    random_state: int = 42

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the model's log-odds f: p = 1 / (1 + exp(-(slope * f + intercept)))."""

    slope: float = 1.0
    intercept: float = 0.0

    def apply(self, log_odds: np.ndarray) -> np.ndarray:
        z = np.clip(self.slope * np.asarray(log_odds, dtype="float64") + self.intercept, -35, 35)
        return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class ChurnModel:
    """A fitted pipeline, the feature columns it expects, its calibration and threshold."""

    pipeline: Pipeline
    feature_names: tuple[str, ...]
    calibration: Calibration = Calibration()
    threshold: float = 0.5
    kind: ModelKind = "logreg"

    @classmethod
    def from_pipeline(
        cls,
        pipeline: Pipeline,
        calibration: Calibration | None = None,
        threshold: float = 0.5,
    ) -> ChurnModel:
        """Rebuild from a pipeline (e.g. loaded from MLflow) and the calibration and threshold
        stored beside it: sklearn remembers the column names it was fitted on."""
        kind: ModelKind = (
            "hgb" if isinstance(pipeline[-1], HistGradientBoostingClassifier) else "logreg"
        )
        return cls(
            pipeline=pipeline,
            feature_names=tuple(pipeline.feature_names_in_),
            calibration=calibration or Calibration(),
            threshold=threshold,
            kind=kind,
        )

    def align(self, features: pd.DataFrame) -> pd.DataFrame:
        """`features` with exactly the training columns, in order. A channel column the model
        does not know counts as `channel_other`; a missing one means "not that channel" (0);
        other extra columns are ignored."""
        return align_columns(features, self.feature_names)

    def log_odds(self, features: pd.DataFrame) -> np.ndarray:
        """The uncalibrated model's log-odds per row (what calibration and SHAP work on)."""
        aligned = self.align(features)
        with limited_threads():
            return np.asarray(self.pipeline.decision_function(aligned), dtype="float64")


def fit_churn_model(
    features: pd.DataFrame,
    labels: pd.Series,
    params: ChurnParams | None = None,
) -> ChurnModel:
    """Fit on every row of `features` that has a label, then calibrate on out-of-fold
    predictions of those rows and choose the threshold there. `recalibrate` replaces both
    with an out-of-time fold when the caller has one."""
    params = params or ChurnParams()
    x, y = joined(features, labels)
    if y.nunique() < 2:
        raise ValueError("churn labels have a single class; cannot fit a classifier")
    if len(y) > params.max_fit_rows:
        rows = np.random.default_rng(params.random_state).choice(
            len(y), params.max_fit_rows, replace=False
        )
        x, y = x.iloc[np.sort(rows)], y.iloc[np.sort(rows)]
    columns = _model_columns(x, params.top_channels)
    x = align_columns(x, columns)
    with limited_threads():
        pipeline = _pipeline(params).fit(x, y)
    model = ChurnModel(pipeline=pipeline, feature_names=tuple(columns), kind=params.kind)
    folds = min(params.calibration_folds, int(y.value_counts().min()))
    if folds < 2:
        return model
    with limited_threads():
        out_of_fold = cross_val_predict(
            _pipeline(params),
            x,
            y,
            cv=StratifiedKFold(folds, shuffle=True, random_state=params.random_state),
            method="decision_function",
        )
    return _calibrated(
        model, out_of_fold, y.to_numpy(), params.min_precision, params.max_flagged_rate
    )


def recalibrate(
    model: ChurnModel,
    features: pd.DataFrame,
    labels: pd.Series,
    min_precision: float = MIN_PRECISION,
    max_flagged_rate: float = MAX_FLAGGED_RATE,
    log_odds: np.ndarray | None = None,
) -> ChurnModel:
    """The same fitted model with Platt calibration and threshold learnt on these rows (an
    out-of-time fold the model was not trained on). `log_odds`: the model's on the labelled
    rows, when the caller has them already (seconds per pass at a million customers)."""
    x, y = joined(features, labels)
    if log_odds is None:
        log_odds = model.log_odds(x)
    return _calibrated(model, log_odds, y.to_numpy(), min_precision, max_flagged_rate)


def fit_platt(log_odds: np.ndarray, truth: np.ndarray) -> Calibration:
    """Platt scaling: a one-feature logistic regression of the outcome on the log-odds."""
    if len(np.unique(truth)) < 2:
        return Calibration()
    platt = LogisticRegression(C=1e6, max_iter=1000)
    platt.fit(np.asarray(log_odds, dtype="float64").reshape(-1, 1), truth)
    return Calibration(slope=float(platt.coef_[0, 0]), intercept=float(platt.intercept_[0]))


def score(model: ChurnModel, features: pd.DataFrame) -> pd.Series:
    """Calibrated churn probability per row of `features` (same index)."""
    proba = model.calibration.apply(model.log_odds(features))
    return pd.Series(proba, index=features.index, name="churn_probability")


def evaluate(model: ChurnModel, features: pd.DataFrame, labels: pd.Series) -> Evaluation:
    """ROC-AUC, PR-AUC, precision and recall at the model's threshold, Brier score (and the
    base-rate predictor's) on rows with a label."""
    x, y = joined(features, labels)
    return evaluate_probabilities(y.to_numpy(), score(model, x).to_numpy(), model.threshold)


def joined(features: pd.DataFrame, labels: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """Rows present in both, in the features' order; labels as 0/1 integers."""
    y = labels.reindex(features.index)
    keep = y.notna().to_numpy()
    return features.loc[keep], y.loc[keep].astype("int64")


def _calibrated(
    model: ChurnModel,
    log_odds: np.ndarray,
    truth: np.ndarray,
    min_precision: float,
    max_flagged_rate: float,
) -> ChurnModel:
    calibration = fit_platt(log_odds, truth)
    proba = calibration.apply(log_odds)
    threshold = choose_threshold(truth, proba, min_precision, max_flagged_rate).threshold
    return replace(model, calibration=calibration, threshold=threshold)


def _pipeline(params: ChurnParams) -> Pipeline:
    if params.kind == "hgb":
        return Pipeline(
            [
                (
                    "model",
                    HistGradientBoostingClassifier(
                        learning_rate=params.learning_rate,
                        max_leaf_nodes=params.max_leaf_nodes,
                        max_iter=params.boosting_rounds,
                        l2_regularization=params.l2_regularization,
                        early_stopping=True,
                        random_state=params.random_state,
                    ),
                )
            ]
        )
    return Pipeline(
        [
            (
                "expand",
                FeatureUnion(
                    [
                        ("raw", "passthrough"),
                        (
                            "compressed",
                            FunctionTransformer(np.arcsinh, feature_names_out="one-to-one"),
                        ),
                    ]
                ),
            ),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            (
                "model",
                LogisticRegression(
                    C=params.c, max_iter=params.max_iter, random_state=params.random_state
                ),
            ),
        ]
    )


def _model_columns(x: pd.DataFrame, top_channels: int) -> list[str]:
    """Non-channel columns in order, then the `top_channels` most frequent channels and
    `channel_other` (when the frame has channel columns at all)."""
    channels = [c for c in x.columns if c.startswith(CHANNEL_PREFIX) and c != OTHER_CHANNEL]
    others = [c for c in x.columns if not c.startswith(CHANNEL_PREFIX)]
    if not channels and OTHER_CHANNEL not in x.columns:
        return others
    counts = x[channels].sum().sort_values(ascending=False, kind="stable")
    kept = sorted(counts.index[:top_channels])
    return [*others, *kept, OTHER_CHANNEL]


def align_columns(features: pd.DataFrame, columns: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """`features` reindexed to `columns` (float64, missing columns 0), channel columns outside
    `columns` added into `channel_other` when the model has that column."""
    aligned = features.reindex(columns=list(columns), fill_value=0.0).astype("float64")
    if OTHER_CHANNEL in columns:
        unknown = [c for c in features.columns if c.startswith(CHANNEL_PREFIX) and c not in columns]
        if unknown:
            extra = features[unknown].astype("float64").sum(axis=1)
            aligned[OTHER_CHANNEL] = aligned[OTHER_CHANNEL] + extra
    return aligned

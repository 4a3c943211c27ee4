"""The churn model: logistic regression on standardized point-in-time features.

Pure functions over DataFrames (no database, no MLflow): fit, split, evaluate, score. A
`ChurnModel` is a fitted sklearn Pipeline plus the feature columns it was trained on, so that
scoring a frame with a different set of acquisition-channel columns still lines up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

# Above this probability a customer counts as "at risk" (the seed's threshold).
DECISION_THRESHOLD = 0.5


@dataclass(frozen=True)
class ChurnParams:
    """Hyper-parameters, logged to MLflow as run parameters."""

    c: float = 1.0
    max_iter: int = 1000
    test_size: float = 0.2
    random_state: int = 42

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class ChurnModel:
    """A fitted pipeline (impute -> standardize -> logistic regression) and its inputs."""

    pipeline: Pipeline
    feature_names: tuple[str, ...]

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline) -> ChurnModel:
        """Rebuild from a pipeline alone (e.g. loaded from MLflow): sklearn remembers the
        column names it was fitted on."""
        return cls(pipeline=pipeline, feature_names=tuple(pipeline.feature_names_in_))

    def align(self, features: pd.DataFrame) -> pd.DataFrame:
        """`features` with exactly the training columns, in order. A channel column that the
        frame lacks means "not that channel" (0); extra columns are ignored."""
        return features.reindex(columns=list(self.feature_names), fill_value=0.0).astype("float64")


@dataclass(frozen=True)
class Split:
    """An 80/20 (by default) stratified train/validation split."""

    x_train: pd.DataFrame
    x_valid: pd.DataFrame
    y_train: pd.Series
    y_valid: pd.Series


@dataclass(frozen=True)
class Evaluation:
    """Validation metrics. Recall is at DECISION_THRESHOLD; the seed optimizes for recall."""

    roc_auc: float
    pr_auc: float
    recall: float
    brier: float
    rows: int
    positive_rate: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def split(features: pd.DataFrame, labels: pd.Series, params: ChurnParams) -> Split:
    """Stratified split of the rows that have both features and a label."""
    x, y = _joined(features, labels)
    x_train, x_valid, y_train, y_valid = train_test_split(
        x,
        y,
        test_size=params.test_size,
        random_state=params.random_state,
        stratify=y if y.nunique() > 1 else None,
    )
    return Split(x_train=x_train, x_valid=x_valid, y_train=y_train, y_valid=y_valid)


def fit_churn_model(features: pd.DataFrame, labels: pd.Series, params: ChurnParams) -> ChurnModel:
    """Fit on every row of `features` that has a label. Balanced class weights, because
    churners are the minority and missing them costs more than a false alarm."""
    x, y = _joined(features, labels)
    if y.nunique() < 2:
        raise ValueError("churn labels have a single class; cannot fit a classifier")
    pipeline = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            (
                "model",
                LogisticRegression(
                    C=params.c,
                    class_weight="balanced",
                    max_iter=params.max_iter,
                    random_state=params.random_state,
                ),
            ),
        ]
    )
    pipeline.fit(x, y)
    return ChurnModel(pipeline=pipeline, feature_names=tuple(x.columns))


def score(model: ChurnModel, features: pd.DataFrame) -> pd.Series:
    """Churn probability per row of `features` (same index), named churn_probability."""
    proba = model.pipeline.predict_proba(model.align(features))[:, 1]
    return pd.Series(proba, index=features.index, name="churn_probability")


def evaluate(model: ChurnModel, features: pd.DataFrame, labels: pd.Series) -> Evaluation:
    """ROC AUC, PR AUC, recall at the decision threshold and Brier score on held-out rows."""
    x, y = _joined(features, labels)
    proba = score(model, x).to_numpy()
    truth = y.to_numpy()
    both_classes = len(np.unique(truth)) > 1
    return Evaluation(
        roc_auc=float(roc_auc_score(truth, proba)) if both_classes else float("nan"),
        pr_auc=float(average_precision_score(truth, proba)) if both_classes else float("nan"),
        recall=float(recall_score(truth, proba >= DECISION_THRESHOLD, zero_division=0.0)),
        brier=float(brier_score_loss(truth, proba)),
        rows=len(truth),
        positive_rate=float(truth.mean()) if len(truth) else float("nan"),
    )


def _joined(features: pd.DataFrame, labels: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """Rows present in both, in the features' order; labels as 0/1 integers."""
    y = labels.reindex(features.index)
    keep = y.notna().to_numpy()
    return features.loc[keep], y.loc[keep].astype("int64")

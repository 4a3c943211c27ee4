"""The bars a churn model must clear to be worth having: ranking by days since the last
session alone, and a plain logistic regression on recency, frequency and monetary features.

Both are fitted (the regression) on the training rows and scored on the same out-of-time
holdout rows as the model; each gain is a paired bootstrap interval of the model's ROC-AUC
minus the baseline's (`ml.churn_metrics.paired_auc_gain`), so "beats the baseline" means
the interval's lower bound is above zero. Pure: frames in, comparisons out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml.churn_metrics import AucComparison, paired_auc_gain

RECENCY = "recency_days"  # days since the last completed session (since signup when none)
# Recency, frequency, monetary: the feature names of `ml.features` (minutes of tutoring are
# the source's spend proxy).
RFM = ("recency_days", "lifetime_sessions", "lifetime_minutes")


@dataclass(frozen=True)
class BaselineGains:
    """The model against each baseline on the same holdout rows."""

    recency: AucComparison
    rfm: AucComparison

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: each baseline's ROC-AUC and the model's gain with its interval."""
        out: dict[str, float] = {}
        for name, comparison in (("recency", self.recency), ("rfm", self.rfm)):
            out[f"baseline_{name}_auc"] = comparison.baseline_auc
            out[f"gain_vs_{name}"] = comparison.gain
            out[f"gain_vs_{name}_lower"] = comparison.lower
            out[f"gain_vs_{name}_upper"] = comparison.upper
        return out


def fit_rfm_baseline(train_x: pd.DataFrame, train_y: pd.Series) -> Pipeline:
    """A plain (standardized, unweighted) logistic regression on the RFM columns `train_x`
    has."""
    pipeline = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(max_iter=1000)),
        ]
    )
    columns = [c for c in RFM if c in train_x.columns]
    return pipeline.fit(train_x[columns].astype("float64"), train_y.astype("int64"))


def baseline_gains(
    train_x: pd.DataFrame,
    train_y: pd.Series,
    valid_x: pd.DataFrame,
    truth: np.ndarray,
    model_scores: np.ndarray,
    seed: int = 0,
) -> BaselineGains | None:
    """The model's ROC-AUC gain over recency alone and over the RFM regression, on the
    holdout rows `valid_x` (outcomes `truth`, the model's scores `model_scores`, same order).
    Training rows without a label are ignored. None when the frames have no recency column
    (features that are not `ml.features`')."""
    if RECENCY not in train_x.columns or RECENCY not in valid_x.columns:
        return None
    labels = train_y.reindex(train_x.index)
    labelled = labels.notna().to_numpy()
    rfm = fit_rfm_baseline(train_x.loc[labelled], labels[labelled])
    days = valid_x[RECENCY].astype("float64")
    recency = days.fillna(days.max()).to_numpy()  # never missing from `ml.features`
    rfm_scores = rfm.decision_function(valid_x[list(rfm.feature_names_in_)].astype("float64"))
    return BaselineGains(
        recency=paired_auc_gain(truth, recency, model_scores, margin=0.0, seed=seed),
        rfm=paired_auc_gain(truth, rfm_scores, model_scores, margin=0.0, seed=seed),
    )

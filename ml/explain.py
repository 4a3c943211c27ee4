"""Why a customer is at risk: per-customer SHAP values of the churn model, top factors first.

SHAP is computed by `shap.LinearExplainer` on the standardized features (the space the
logistic regression sees), against the training mean as background. For a linear model that
is coef * (x - mean) in log-odds, which shap evaluates as one matrix operation; rows go
through it in batches so a million customers stay fast and bounded in memory.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ml.churn import ChurnModel
from ml.features import CHANNEL_PREFIX

BATCH_ROWS = 250_000

FEATURE_LABELS = {
    "sessions_per_week": "Sessions per week (last 4 weeks)",
    "days_since_last_session": "Days since last completed session",
    "avg_rating_30d": "Average session rating (30 days)",
    "inbound_calls_30d": "Support calls (30 days)",
    "goal_progress_pct": "Progress towards goal (%)",
    "distinct_tutors_90d": "Different tutors (90 days)",
    "tutor_switches_90d": "Tutor switches (90 days)",
    "tenure_days": "Days as a customer",
    "tutor_cancellations_90d": "Sessions cancelled by the tutor (90 days)",
    "tutor_no_shows_90d": "Tutor no-shows (90 days)",
}


def feature_label(feature: str) -> str:
    """The wording an ops manager sees for a model feature."""
    if feature in FEATURE_LABELS:
        return FEATURE_LABELS[feature]
    if feature.startswith(CHANNEL_PREFIX):
        channel = feature.removeprefix(CHANNEL_PREFIX).replace("_", " ")
        return f"Acquired through {channel}"
    return feature.replace("_", " ").capitalize()


def shap_values(model: ChurnModel, features: pd.DataFrame) -> np.ndarray:
    """SHAP values (log-odds) per row and feature, columns in model.feature_names order."""
    import shap  # heavy import (~6 s): only when explaining

    standardized = model.pipeline[:-1]
    estimator = model.pipeline[-1]
    n_features = len(model.feature_names)
    # The scaler centres the (imputed) training data, so its mean is exactly 0 here.
    background = (np.zeros(n_features), np.eye(n_features))
    explainer = shap.LinearExplainer(estimator, background)
    aligned = model.align(features)
    out = np.empty((len(aligned), n_features), dtype="float64")
    for start in range(0, len(aligned), BATCH_ROWS):
        batch = standardized.transform(aligned.iloc[start : start + BATCH_ROWS])
        out[start : start + len(batch)] = explainer.shap_values(np.asarray(batch))
    return out


def top_factors(model: ChurnModel, features: pd.DataFrame, k: int = 3) -> list[list[dict]]:
    """For each row, the k features that moved its churn risk most (largest |SHAP| first).

    Each factor: {"feature": column, "label": readable name, "value": the customer's value
    (None when missing), "shap": log-odds contribution, "direction": "raises" | "lowers"}.
    """
    values = shap_values(model, features)
    k = min(k, values.shape[1])
    if k == 0 or len(values) == 0:
        return [[] for _ in range(len(values))]
    magnitude = np.abs(values)
    candidates = np.argpartition(-magnitude, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(magnitude, candidates, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(candidates, order, axis=1)
    top_shap = np.take_along_axis(values, top, axis=1).round(4)
    raw = model.align(features).to_numpy()
    top_raw = np.take_along_axis(raw, top, axis=1).round(2)

    names = list(model.feature_names)
    labels = [feature_label(name) for name in names]
    result: list[list[dict]] = []
    for cols, shaps, raws in zip(top.tolist(), top_shap.tolist(), top_raw.tolist(), strict=True):
        result.append(
            [
                {
                    "feature": names[col],
                    "label": labels[col],
                    "value": None if math.isnan(value) else value,
                    "shap": contribution,
                    "direction": "raises" if contribution > 0 else "lowers",
                }
                for col, contribution, value in zip(cols, shaps, raws, strict=True)
            ]
        )
    return result

"""Why a customer is at risk: per-customer SHAP values of the churn model, top factors first,
each in plain words with its value and the suggested intervention (`ml.churn_reasons`).

For the logistic regression SHAP is computed by `shap.LinearExplainer` on the standardized
features (the space the model sees), against the training mean as background: coef * (x -
mean) in log-odds, one matrix operation per batch, so a million customers stay fast and bounded
in memory. For a gradient-boosting champion it is `shap.TreeExplainer` (slower: use it for the
customers shown, not for bulk scoring). Values are in the uncalibrated model's log-odds; Platt
calibration is monotone, so the order and direction of factors are the same.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ml.churn import ChurnModel, limited_threads
from ml.churn_reasons import action, reason
from ml.features import CHANNEL_PREFIX

BATCH_ROWS = 250_000

FEATURE_LABELS = {
    "recency_days": "Days since last completed session",
    "customer_age_days": "Days as a customer",
    "lifetime_sessions": "Completed sessions so far",
    "sessions_per_active_week": "Sessions per active week",
    "sessions_per_tenure_week": "Sessions per week as a customer",
    "lifetime_minutes": "Minutes of tutoring so far",
    "mean_gap_days": "Usual days between sessions",
    "gap_ratio": "Current gap against the usual gap",
    "recent_sessions_30d": "Sessions (last 30 days)",
    "prior_sessions_90d": "Sessions (the 90 days before)",
    "session_trend": "Session pace, last 30 days against the 90 before",
    "rating_avg_90d": "Average session rating (90 days)",
    "rating_last": "Latest session rating",
    "support_calls_30d": "Support calls (30 days)",
    "tutor_changes_90d": "Tutor changes (90 days)",
    "tutor_failures_90d": "Sessions cancelled or missed by the tutor (90 days)",
    "customer_cancellations_90d": "Sessions the customer cancelled or missed (90 days)",
    "bookings_ahead": "Sessions booked ahead",
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

    aligned = model.align(features)
    n_features = len(model.feature_names)
    out = np.empty((len(aligned), n_features), dtype="float64")
    if model.kind == "hgb":
        explainer = shap.TreeExplainer(model.pipeline[-1])
        transform = model.pipeline[:-1]
    else:
        # The scaler centres the (imputed) training data, so its mean is exactly 0 here. Each
        # feature enters the regression as several columns (raw, compressed): its SHAP value
        # is the sum of theirs, since the model is additive.
        width = model.pipeline[-1].coef_.shape[1]
        background = (np.zeros(width), np.eye(width))
        explainer = shap.LinearExplainer(model.pipeline[-1], background)
        transform = model.pipeline[:-1]
    with limited_threads():
        for start in range(0, len(aligned), BATCH_ROWS):
            batch = aligned.iloc[start : start + BATCH_ROWS]
            matrix = np.asarray(transform.transform(batch) if len(transform) else batch)
            values = np.asarray(explainer.shap_values(matrix)).reshape(len(batch), -1)
            out[start : start + len(batch)] = values.reshape(len(batch), -1, n_features).sum(axis=1)
    return out


def top_factors(model: ChurnModel, features: pd.DataFrame, k: int = 3) -> list[list[dict]]:
    """For each row, the k features that moved its churn risk most (largest |SHAP| first).

    Each factor: {"feature": column, "label": readable name, "value": the customer's value
    (None when missing), "shap": log-odds contribution, "direction": "raises" | "lowers",
    "reason": the factor in plain words with the value ("no session in 23 days"), "action":
    the suggested intervention (None for a factor that lowers the risk)}.
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
    # The words depend on (feature, value, direction) only, and values are rounded: most
    # customers share them with another, so each is worded once per call.
    words: dict[tuple[int, float | None, bool], tuple[str, str | None]] = {}
    result: list[list[dict]] = []
    for cols, shaps, raws in zip(top.tolist(), top_shap.tolist(), top_raw.tolist(), strict=True):
        result.append(
            [
                _factor(names[col], labels[col], col, value, contribution, words)
                for col, contribution, value in zip(cols, shaps, raws, strict=True)
            ]
        )
    return result


def _factor(
    feature: str,
    label: str,
    col: int,
    value: float,
    contribution: float,
    words: dict[tuple[int, float | None, bool], tuple[str, str | None]],
) -> dict:
    raises = contribution > 0
    shown = None if math.isnan(value) else value
    key = (col, shown, raises)
    said = words.get(key)
    if said is None:
        said = words[key] = (reason(feature, shown, raises), action(feature, raises))
    return {
        "feature": feature,
        "label": label,
        "value": shown,
        "shap": contribution,
        "direction": "raises" if raises else "lowers",
        "reason": said[0],
        "action": said[1],
    }


def plain_reasons(factors: list[dict]) -> str:
    """One line for a person: the factors that raise the risk, in words, then what to do
    ("no session in 23 days; 3 support calls in the last 30 days -> Call to ...")."""
    raising = [f for f in factors if f["direction"] == "raises"]
    if not raising:
        return ""
    words = "; ".join(f["reason"] for f in raising)
    first_action = next((f["action"] for f in raising if f["action"]), None)
    return f"{words} -> {first_action}" if first_action else words

"""Feature drift of the churn model: the population stability index (PSI) of each feature
between the training population and today's.

PSI = sum over bins of (actual% - expected%) * ln(actual% / expected%), with bins at the
training distribution's quantiles (a value of its own for missing values). Rule of thumb,
used as the default alert level: below 0.1 stable, 0.1-0.2 moderate, above 0.2 a shift the
model was not trained for (retrain, and look at why).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PSI_ALERT = 0.2
BINS = 10
# Keeps empty bins from making the index infinite.
_FLOOR = 1e-4


@dataclass(frozen=True)
class FeatureDrift:
    """PSI of one feature, and whether it crosses the alert level."""

    feature: str
    psi: float
    drifted: bool


def psi(expected: pd.Series, actual: pd.Series, bins: int = BINS) -> float:
    """PSI of `actual` against `expected` (the training values of one feature)."""
    reference = expected.dropna().to_numpy(dtype="float64")
    current = actual.dropna().to_numpy(dtype="float64")
    edges = np.quantile(reference, np.linspace(0, 1, bins + 1)) if len(reference) else np.empty(0)
    inner = np.unique(edges)[1:-1]

    def shares(values: np.ndarray, missing: int, total: int) -> np.ndarray:
        counts = np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(inner) + 1)
        return np.maximum(np.append(counts, missing) / max(total, 1), _FLOOR)

    e = shares(reference, int(expected.isna().sum()), len(expected))
    a = shares(current, int(actual.isna().sum()), len(actual))
    return float(np.sum((a - e) * np.log(a / e)))


def feature_drift(
    training: pd.DataFrame, current: pd.DataFrame, alert_at: float = PSI_ALERT
) -> list[FeatureDrift]:
    """PSI per feature present in both frames, most drifted first."""
    common = [c for c in training.columns if c in current.columns]
    drift = [
        FeatureDrift(
            feature=c, psi=(value := psi(training[c], current[c])), drifted=value > alert_at
        )
        for c in common
    ]
    return sorted(drift, key=lambda d: -d.psi)

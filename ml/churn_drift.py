"""Feature drift of the churn model: the population stability index (PSI) of each feature
between the training population and today's.

PSI = sum over bins of (actual% - expected%) * ln(actual% / expected%), with bins at the
training distribution's quantiles (a value of its own for missing values; for a feature with
few distinct values, such as a 0/1 channel column whose quantiles would all coincide, one bin
per value plus one below and one above them). Rule of thumb, used as the default alert level: below 0.1 stable, 0.1-0.2
moderate, above 0.2 a shift the model was not trained for (retrain, and look at why).

`write_drift` keeps the daily history in `ml.churn_drift` (one row per day, model and
feature); the alert rules read it, and the Dagster monitoring asset asks for retraining when a
feature drifted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import psycopg

PSI_ALERT = 0.2
# Customers of today's population compared with the reference: the reference is a sample of a
# few thousand holdout rows, so its own sampling noise dominates the PSI long before this many;
# reading every customer (414k at a million customers, ~15 s of feature SQL) adds nothing.
DRIFT_SAMPLE_CUSTOMERS = 100_000
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
    distinct = np.unique(reference)
    if len(distinct) == 0:
        inner = distinct
    elif len(distinct) <= bins:
        # One bin per value seen in training, and one each for values below and above them
        # (a count that was always 0 in training and is 3 today has drifted).
        inner = np.concatenate(
            [distinct[:1], (distinct[1:] + distinct[:-1]) / 2, [np.nextafter(distinct[-1], np.inf)]]
        )
    else:
        inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))[1:-1]

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


UPSERT_DRIFT_SQL = """
insert into ml.churn_drift
    (monitored_date, model_name, model_version, feature, psi, is_drifted, threshold)
values (%s, %s, %s, %s, %s, %s, %s)
on conflict (monitored_date, model_name, feature) do update set
    model_version = excluded.model_version,
    psi = excluded.psi,
    is_drifted = excluded.is_drifted,
    threshold = excluded.threshold,
    computed_at = now()
"""


def write_drift(
    conn: psycopg.Connection,
    monitored_date: date,
    model_name: str,
    model_version: str,
    drift: list[FeatureDrift],
    threshold: float,
) -> int:
    """Store one day's PSI per feature (a rerun the same day replaces that day's values), in
    the caller's transaction. Returns the number of rows written."""
    with conn.cursor() as cur:
        cur.executemany(
            UPSERT_DRIFT_SQL,
            [
                (monitored_date, model_name, model_version, d.feature, d.psi, d.drifted, threshold)
                for d in drift
            ],
        )
    return len(drift)

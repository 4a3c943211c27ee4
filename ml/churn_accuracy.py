"""Realized accuracy of past churn scores, once their outcome is known.

A score stamped `scored_at` predicts churn in the `horizon_days` after it, labelled exactly as
training labels it (`ml.features.label_churn`: no completed or booked session in
(scored_at, scored_at + horizon]). When that window has closed, both in the clock's time and
in the data (the newest session that took place is past its end), the scores of that day are
compared with what happened: ROC-AUC, and recall and precision at the threshold the scoring
model version used. One row per scoring day and model version in `ml.churn_accuracy`, once the whole day's
window has closed; the latest run of a day stands for the day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import psycopg

# Scoring days evaluated per call at most: a first run over a long history catches up over a
# few days instead of holding the warehouse for one long run (each day is one label query).
MAX_DAYS_PER_RUN = 14

# The newest scoring run of each UTC day and model version, for days that ended before
# %(closed_before)s (so every run of the day has a closed outcome window), without realized
# accuracy yet.
PENDING_SQL = """
with runs as (
    select
        (scored_at at time zone 'UTC')::date as scored_date,
        model_name,
        model_version,
        max(scored_at) as scored_at
    from ml.churn_scores
    where scored_at < %(closed_before)s
    group by 1, 2, 3
)
select r.scored_date, r.model_name, r.model_version, r.scored_at
from runs as r
where not exists (
    select 1
    from ml.churn_accuracy as a
    where
        a.scored_date = r.scored_date
        and a.model_name = r.model_name
        and a.model_version = r.model_version
)
order by r.scored_date, r.model_name, r.model_version
limit %(limit)s
"""

SCORES_SQL = """
select customer_id, churn_probability
from ml.churn_scores
where scored_at = %s and model_name = %s and model_version = %s
"""

UPSERT_ACCURACY_SQL = """
insert into ml.churn_accuracy
    (scored_date, model_name, model_version, customers, churned, roc_auc, recall, precision,
     threshold)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
on conflict (scored_date, model_name, model_version) do update set
    customers = excluded.customers,
    churned = excluded.churned,
    roc_auc = excluded.roc_auc,
    recall = excluded.recall,
    precision = excluded.precision,
    threshold = excluded.threshold,
    computed_at = now()
"""


@dataclass(frozen=True)
class ScoringRun:
    """The scores of one day and model version whose outcome is known."""

    scored_date: date
    model_name: str
    model_version: str
    scored_at: datetime


@dataclass(frozen=True)
class RealizedAccuracy:
    """How the scores of one day did against the outcome; None where undefined (one class
    only, no threshold known, nobody flagged)."""

    scored_date: date
    model_name: str
    model_version: str
    customers: int
    churned: int
    roc_auc: float | None
    recall: float | None
    precision: float | None
    threshold: float | None


def realized_metrics(
    truth: np.ndarray, proba: np.ndarray, threshold: float | None
) -> tuple[float | None, float | None, float | None]:
    """(ROC-AUC, recall, precision) of probabilities against 0/1 outcomes."""
    from sklearn.metrics import roc_auc_score

    truth = np.asarray(truth, dtype="int64")
    proba = np.asarray(proba, dtype="float64")
    auc = float(roc_auc_score(truth, proba)) if len(np.unique(truth)) > 1 else None
    if threshold is None:
        return auc, None, None
    flagged = proba >= threshold
    hits = int((flagged & (truth == 1)).sum())
    positives = int(truth.sum())
    recall = hits / positives if positives else None
    precision = hits / int(flagged.sum()) if flagged.any() else None
    return auc, recall, precision


def pending_runs(
    conn: psycopg.Connection, closed_before: datetime, limit: int = MAX_DAYS_PER_RUN
) -> list[ScoringRun]:
    """The newest scoring run of each day that ended by `closed_before`, without realized
    accuracy yet, oldest day first."""
    with conn.cursor() as cur:
        cur.execute(PENDING_SQL, {"closed_before": closed_before, "limit": limit})
        return [ScoringRun(*row) for row in cur.fetchall()]


def record_realized_accuracy(
    conn: psycopg.Connection,
    now: datetime,
    threshold_of: Callable[[str, str], float | None],
    horizon_days: int = 60,
    limit: int = MAX_DAYS_PER_RUN,
) -> list[RealizedAccuracy]:
    """Evaluate every scoring day whose `horizon_days` outcome window closed by `now` and by
    the newest session in the data, and store the results, in the caller's transaction.
    `threshold_of(model_name, model_version)` is the decision threshold that version scored
    with (None when unknown: recall and precision stay empty)."""
    from ml.features import data_range, label_churn

    _, newest = data_range(conn)
    if newest is None:
        return []
    closed_at = (min(now, newest) - timedelta(days=horizon_days)).astimezone(UTC)
    closed_before = closed_at.replace(hour=0, minute=0, second=0, microsecond=0)
    results = []
    for run in pending_runs(conn, closed_before, limit):
        labels = label_churn(conn, run.scored_at, horizon_days, newest)
        with conn.cursor() as cur:
            cur.execute(SCORES_SQL, (run.scored_at, run.model_name, run.model_version))
            scored = pd.Series(dict(cur.fetchall()), dtype="float64", name="probability")
        both = pd.concat([labels, scored], axis=1, join="inner")
        truth = both["churned"].to_numpy(dtype="int64")
        proba = both["probability"].to_numpy(dtype="float64")
        threshold = threshold_of(run.model_name, run.model_version)
        auc, recall, precision = realized_metrics(truth, proba, threshold)
        result = RealizedAccuracy(
            scored_date=run.scored_date,
            model_name=run.model_name,
            model_version=run.model_version,
            customers=len(both),
            churned=int(truth.sum()),
            roc_auc=auc,
            recall=recall,
            precision=precision,
            threshold=threshold,
        )
        with conn.cursor() as cur:
            cur.execute(
                UPSERT_ACCURACY_SQL,
                (
                    result.scored_date,
                    result.model_name,
                    result.model_version,
                    result.customers,
                    result.churned,
                    result.roc_auc,
                    result.recall,
                    result.precision,
                    result.threshold,
                ),
            )
        results.append(result)
    return results

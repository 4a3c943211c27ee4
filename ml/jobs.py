"""The churn use cases: train and register a model, score every active customer.

Each takes a warehouse connection and an MLflow tracking URI, so a notebook, a script or the
Dagster assets (`orchestration/defs/churn/`) run them the same way. sklearn, shap and mlflow are
imported inside the functions: importing this module stays cheap for the code location.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

    from ml.churn import Evaluation
    from ml.features import TrainingWindow
    from ml.registry import Registration


@dataclass(frozen=True)
class TrainingOutcome:
    """One training run: where history was cut, how the model did, where it was registered."""

    window: TrainingWindow
    rows: int
    evaluation: Evaluation
    registration: Registration


@dataclass(frozen=True)
class ScoringOutcome:
    """One scoring run over the active customers."""

    scored_at: datetime
    rows: int
    at_risk: int
    model_version: str
    seconds: dict[str, float]


def train_and_register(conn: psycopg.Connection, tracking_uri: str) -> TrainingOutcome:
    """Cut history so that labels cover a full horizon, fit on 80%, evaluate on 20%, register."""
    from ml.churn import ChurnParams, evaluate, fit_churn_model, split
    from ml.features import choose_training_window, data_range, label_churn, load_features
    from ml.registry import log_and_register

    oldest, newest = data_range(conn)
    if oldest is None or newest is None:
        raise ValueError("raw.sessions holds no completed sessions yet; nothing to learn from")
    window = choose_training_window(oldest, newest)
    features = load_features(conn, window.as_of)
    labels = label_churn(conn, window.as_of, window.horizon_days)
    params = ChurnParams()
    parts = split(features, labels, params)
    model = fit_churn_model(parts.x_train, parts.y_train, params)
    evaluation = evaluate(model, parts.x_valid, parts.y_valid)
    run_params = {
        **params.as_dict(),
        "as_of": window.as_of.isoformat(),
        "horizon_days": window.horizon_days,
        "train_rows": len(parts.x_train),
        "features": ",".join(model.feature_names),
    }
    registration = log_and_register(model, evaluation.as_dict(), run_params, tracking_uri)
    return TrainingOutcome(
        window=window, rows=len(features), evaluation=evaluation, registration=registration
    )


def score_active_customers(
    conn: psycopg.Connection, tracking_uri: str, scored_at: datetime
) -> ScoringOutcome:
    """Score every customer active at `scored_at` with the champion and store the scores."""
    from ml.churn import DECISION_THRESHOLD, score
    from ml.explain import top_factors
    from ml.features import load_features
    from ml.registry import load_champion
    from ml.scores_io import write_churn_scores

    clock = time.perf_counter()
    loaded = load_champion(tracking_uri)
    seconds = {"load_model": time.perf_counter() - clock}
    clock = time.perf_counter()
    features = load_features(conn, scored_at)
    seconds["features"] = time.perf_counter() - clock
    clock = time.perf_counter()
    probability = score(loaded.model, features)
    factors = top_factors(loaded.model, features, k=3)
    seconds["score_explain"] = time.perf_counter() - clock
    clock = time.perf_counter()
    rows = write_churn_scores(conn, probability, factors, scored_at, loaded)
    seconds["write"] = time.perf_counter() - clock
    return ScoringOutcome(
        scored_at=scored_at,
        rows=rows,
        at_risk=int((probability >= DECISION_THRESHOLD).sum()),
        model_version=loaded.version,
        seconds={k: round(v, 2) for k, v in seconds.items()},
    )

"""Churn assets: thin wrappers over `ml/`.

`ml.churn_model` trains on point-in-time features and registers the model in MLflow;
`ml.churn_scores` scores every active customer with the champion and stores the top reasons.
The ml/ modules (sklearn, shap, mlflow) are imported inside the helpers so that loading the
code location stays fast.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg
from psycopg.copy import QueuedLibpqWriter

from orchestration.defs.resources import MlflowResource, WarehouseResource

if TYPE_CHECKING:
    import pandas as pd
    import psycopg

    from ml.churn import Evaluation
    from ml.features import TrainingWindow
    from ml.registry import LoadedModel, Registration

CUSTOMER_HEALTH = dg.AssetKey(["marts", "customer_health"])
CHURN_MODEL = dg.AssetKey(["ml", "churn_model"])
COPY_BLOCK_ROWS = 50_000


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


def write_churn_scores(
    conn: psycopg.Connection,
    probability: pd.Series,
    factors: list[list[dict]],
    scored_at: datetime,
    loaded: LoadedModel,
) -> int:
    """Replace the scores stamped `scored_at` (a rerun never duplicates) and COPY the new ones
    in, in the caller's transaction. Lines are assembled in COPY's text format in blocks and
    a writer thread feeds them to the server while the next block is encoded."""
    constant = "\t".join(
        _copy_text(v) for v in (scored_at.isoformat(), loaded.name, loaded.version)
    )
    ids = probability.index.tolist()
    values = probability.tolist()
    encode = json.JSONEncoder().encode
    with conn.cursor() as cur:
        cur.execute("delete from ml.churn_scores where scored_at = %s", (scored_at,))
        with cur.copy(
            "copy ml.churn_scores (customer_id, churn_probability, top_factors,"
            " scored_at, model_name, model_version) from stdin",
            writer=QueuedLibpqWriter(cur),
        ) as copy:
            for start in range(0, len(ids), COPY_BLOCK_ROWS):
                stop = start + COPY_BLOCK_ROWS
                copy.write(
                    "".join(
                        f"{cid}\t{p!r}\t{_copy_text(encode(reasons))}\t{constant}\n"
                        for cid, p, reasons in zip(
                            ids[start:stop], values[start:stop], factors[start:stop], strict=True
                        )
                    )
                )
    return len(factors)


def _copy_text(value: str) -> str:
    """Escape a value for COPY's text format (backslash, tab, newline, carriage return)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


@dg.asset(
    key=CHURN_MODEL,
    group_name="churn",
    deps=[CUSTOMER_HEALTH],
    kinds={"sklearn", "mlflow"},
)
def churn_model(warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    """The churn model: logistic regression predicting that a customer has no session in the
    next 60 days, trained on point-in-time features (cut 60 days before the newest session)
    and registered in MLflow as `churn_logreg`. Grain: one registered model version per
    materialization; it becomes `champion` unless its validation AUC is worse than the
    champion's by more than 0.01 (then `challenger`)."""
    with warehouse.connect() as conn:
        outcome = train_and_register(conn, mlflow.resolved_uri())
    return dg.MaterializeResult(
        metadata={
            "auc": outcome.evaluation.roc_auc,
            "pr_auc": outcome.evaluation.pr_auc,
            "recall_at_0_5": outcome.evaluation.recall,
            "brier": outcome.evaluation.brier,
            "churn_rate": outcome.evaluation.positive_rate,
            "rows": outcome.rows,
            "as_of": outcome.window.as_of.isoformat(),
            "horizon_days": outcome.window.horizon_days,
            "version": outcome.registration.version,
            "alias": outcome.registration.alias,
            "run_id": outcome.registration.run_id,
        }
    )


@dg.asset(
    key=["ml", "churn_scores"],
    group_name="churn",
    deps=[CHURN_MODEL],
    kinds={"postgres"},
)
def churn_scores(warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    """Churn risk of every active customer now, from the champion model, with the three
    factors that drive it most (SHAP). Grain: one row per customer per scoring run
    (`scored_at`); the newest `scored_at` is the current view."""
    scored_at = datetime.now(UTC).replace(microsecond=0)
    with warehouse.connect() as conn:
        outcome = score_active_customers(conn, mlflow.resolved_uri(), scored_at)
    return dg.MaterializeResult(
        metadata={
            "rows": outcome.rows,
            "at_risk": outcome.at_risk,
            "scored_at": outcome.scored_at.isoformat(),
            "model_version": outcome.model_version,
            **{f"seconds_{step}": value for step, value in outcome.seconds.items()},
        }
    )

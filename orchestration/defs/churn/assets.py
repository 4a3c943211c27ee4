"""Churn assets: thin wrappers over `ml.jobs` (train + register, score every active customer,
monitor the champion: feature drift and the realized accuracy of past scores).

`ml` imports sklearn, shap and mlflow inside its functions, so loading the code location
stays fast.
"""

# No `from __future__ import annotations`: Dagster reads the config and resource annotations.

from datetime import UTC, datetime

import dagster as dg

from ml.jobs import monitor_churn, score_active_customers, train_and_register
from ml.safe_load import UntrustedModelError
from orchestration.defs.resources import MlflowResource, WarehouseResource
from orchestration.lib.retries import MODEL_RUN_RETRY, fail_at_once

CHURN_MODEL = dg.AssetKey(["ml", "churn_model"])
CHURN_SCORES = dg.AssetKey(["ml", "churn_scores"])
CHURN_MONITORING = dg.AssetKey(["ml", "churn_monitoring"])
# The relations `ml.features` reads (features and labels).
FEATURE_SOURCES = [
    dg.AssetKey(["intermediate", "int_sessions_deduplicated"]),
    dg.AssetKey(["staging", "stg_marketplace__customers"]),
    dg.AssetKey(["staging", "stg_support__inbound_calls"]),
]


@dg.asset(key=CHURN_MODEL, group_name="churn", deps=FEATURE_SOURCES, kinds={"sklearn", "mlflow"})
def churn_model(warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    """The churn model: the probability that a customer has no completed or booked session in
    the next 60 days, from point-in-time features. Trained on cut-offs whose labels end before
    the out-of-time holdout (the 60 days up to the newest session), calibrated on it, and
    registered in MLflow as `churn_logreg`. Logistic regression unless gradient boosting beats
    it by 0.01 ROC-AUC on the holdout (paired bootstrap). Grain: one registered model version
    per materialization; it becomes `champion` only when it beats the serving champion on the
    same holdout rows (else `challenger`)."""
    with warehouse.connect() as conn:
        outcome = train_and_register(conn, mlflow.resolved_uri(), connect=warehouse.connect)
    evaluation = outcome.evaluation
    return dg.MaterializeResult(
        metadata={
            "kind": outcome.kind,
            "auc": evaluation.roc_auc,
            "pr_auc": evaluation.pr_auc,
            "threshold": evaluation.threshold,
            "recall_at_threshold": evaluation.recall,
            "precision_at_threshold": evaluation.precision,
            "flagged_rate": evaluation.flagged_rate,
            "brier": evaluation.brier,
            "brier_base_rate": evaluation.brier_base_rate,
            "churn_rate": evaluation.positive_rate,
            "rows": outcome.rows,
            "valid_cutoff": outcome.plan.valid_cutoff.isoformat(),
            "train_cutoffs": ", ".join(t.isoformat() for t in outcome.plan.train_cutoffs),
            "out_of_time": outcome.plan.out_of_time,
            "horizon_days": outcome.plan.horizon_days,
            "auc_gain_vs_champion": (
                outcome.vs_champion.gain if outcome.vs_champion else float("nan")
            ),
            "version": outcome.registration.version,
            "alias": outcome.registration.alias,
            "run_id": outcome.registration.run_id,
        }
    )


@dg.asset(
    key=CHURN_SCORES,
    group_name="churn",
    deps=[CHURN_MODEL, *FEATURE_SOURCES],
    kinds={"postgres"},
    retry_policy=MODEL_RUN_RETRY,
)
def churn_scores(warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    """Calibrated churn risk of every active customer now, from the champion model, with the
    three factors that drive it most (SHAP) in plain words and a suggested action. Grain: one row per customer per scoring run
    (`scored_at`); the newest `scored_at` is the current view."""
    scored_at = datetime.now(UTC).replace(microsecond=0)
    # A refused champion stays refused: fail now (alerted), the previous scores stay.
    with fail_at_once(UntrustedModelError), warehouse.connect() as conn:
        outcome = score_active_customers(
            conn, mlflow.resolved_uri(), scored_at, connect=warehouse.connect
        )
    return dg.MaterializeResult(
        metadata={
            "rows": outcome.rows,
            "at_risk": outcome.at_risk,
            "threshold": outcome.threshold,
            "scored_at": outcome.scored_at.isoformat(),
            "model_version": outcome.model_version,
            **{f"seconds_{step}": value for step, value in outcome.seconds.items()},
        }
    )


class ChurnMonitoringConfig(dg.Config):
    """PSI above `psi_threshold` marks a feature drifted (and asks for retraining); scores are
    judged once `horizon_days` (the model's churn horizon) have passed."""

    # ml.churn_drift.PSI_ALERT, not imported: it would load pandas with the code location.
    psi_threshold: float = 0.2
    horizon_days: int = 60


@dg.asset(
    key=CHURN_MONITORING,
    group_name="churn",
    deps=[CHURN_MODEL, CHURN_SCORES, *FEATURE_SOURCES],
    kinds={"postgres"},
    retry_policy=MODEL_RUN_RETRY,
)
def churn_monitoring(
    config: ChurnMonitoringConfig, warehouse: WarehouseResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    """Is the serving churn model still right? PSI of each feature today against the
    population the champion was last fitted on (its out-of-time holdout), into
    ml.churn_drift: PSI above the threshold = drifted, which the sensor
    `retrain_churn_on_drift` answers with a retraining run and the alert rules with an alert. For each scoring day whose 60-day outcome is now known, realized ROC-AUC,
    recall and precision into ml.churn_accuracy; the view ml.churn_monitoring shows both as
    one history. Forecast accuracy lives apart, in ml.model_monitoring. Grain: ml.churn_drift
    one row per day, model and feature; ml.churn_accuracy one row per scoring day and model
    version."""
    now = datetime.now(UTC).replace(microsecond=0)
    with fail_at_once(UntrustedModelError), warehouse.connect() as conn:
        outcome = monitor_churn(
            conn, mlflow.resolved_uri(), now, config.psi_threshold, config.horizon_days
        )
    top = outcome.drift[0] if outcome.drift else None
    return dg.MaterializeResult(
        metadata={
            "monitored_date": outcome.monitored_date.isoformat(),
            "model_version": outcome.model_version or "none",
            "reference": outcome.reference,
            "psi_threshold": outcome.psi_threshold,
            "features": len(outcome.drift),
            "drifted_features": len(outcome.drifted),
            "drifted": ", ".join(outcome.drifted) or "none",
            "max_psi": top.psi if top else 0.0,
            "max_psi_feature": top.feature if top else "none",
            "scoring_days_evaluated": len(outcome.accuracy),
            "latest_realized_auc": (
                outcome.accuracy[-1].roc_auc
                if outcome.accuracy and outcome.accuracy[-1].roc_auc is not None
                else float("nan")
            ),
        }
    )

"""Churn assets: thin wrappers over `ml.jobs` (train + register, score every active customer).

`ml` imports sklearn, shap and mlflow inside its functions, so loading the code location
stays fast.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from ml.jobs import score_active_customers, train_and_register
from orchestration.defs.resources import MlflowResource, WarehouseResource

CUSTOMER_HEALTH = dg.AssetKey(["marts", "customer_health"])
CHURN_MODEL = dg.AssetKey(["ml", "churn_model"])


@dg.asset(key=CHURN_MODEL, group_name="churn", deps=[CUSTOMER_HEALTH], kinds={"sklearn", "mlflow"})
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


@dg.asset(key=["ml", "churn_scores"], group_name="churn", deps=[CHURN_MODEL], kinds={"postgres"})
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

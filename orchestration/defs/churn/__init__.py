"""Churn domain: the churn model (trained, evaluated, registered in MLflow), daily scores,
scores again right after a promotion, daily monitoring (drift, realized accuracy), and
retraining when a feature drifted."""

import dagster as dg

from orchestration.defs.churn.assets import churn_model, churn_monitoring, churn_scores
from orchestration.defs.churn.schedules import SCHEDULES
from orchestration.defs.churn.sensors import retrain_churn_on_drift, score_churn_after_promotion

defs = dg.Definitions(
    assets=[churn_model, churn_scores, churn_monitoring],
    schedules=SCHEDULES,
    sensors=[score_churn_after_promotion, retrain_churn_on_drift],
)

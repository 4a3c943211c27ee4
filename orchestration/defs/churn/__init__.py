"""Churn domain: the churn model (trained, evaluated, registered in MLflow), daily scores, and
scores again right after a promotion."""

import dagster as dg

from orchestration.defs.churn.assets import churn_model, churn_scores
from orchestration.defs.churn.schedules import SCHEDULES
from orchestration.defs.churn.sensors import score_churn_after_promotion

defs = dg.Definitions(
    assets=[churn_model, churn_scores],
    schedules=SCHEDULES,
    sensors=[score_churn_after_promotion],
)

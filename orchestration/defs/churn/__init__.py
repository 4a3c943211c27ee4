"""Churn domain: the churn model (trained, evaluated, registered in MLflow) and daily scores."""

import dagster as dg

from orchestration.defs.churn.assets import churn_model, churn_scores
from orchestration.defs.churn.schedules import SCHEDULES

defs = dg.Definitions(assets=[churn_model, churn_scores], schedules=SCHEDULES)

"""Recommendations domain: interventions generated from the marts and churn scores, and when
they are generated (the use cases live in `alerting.recommendations`)."""

import dagster as dg

from orchestration.defs.recommendations.assets import recommendations
from orchestration.defs.recommendations.sensors import (
    generate_recommendations_job,
    recommendations_after_churn_scores,
    recommendations_after_marts,
)

defs = dg.Definitions(
    assets=[recommendations],
    jobs=[generate_recommendations_job],
    sensors=[recommendations_after_churn_scores, recommendations_after_marts],
)

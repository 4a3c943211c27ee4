"""The recommendations asset: a thin wrapper over `alerting.recommendations`."""

# No `from __future__ import annotations`: Dagster reads the resource parameter's annotation.

import dagster as dg

from alerting.recommendations import generate_recommendations
from orchestration.defs.resources import WarehouseResource

RECOMMENDATIONS = dg.AssetKey(["app", "recommendations"])
# What the generation reads: churn factors, the customer and tutor marts, the supply gaps.
TRIGGERS = [
    dg.AssetKey(["ml", "churn_scores"]),
    dg.AssetKey(["marts", "customer_health"]),
    dg.AssetKey(["marts", "tutor_performance"]),
    dg.AssetKey(["marts", "demand_supply_gaps_hourly"]),
]


@dg.asset(key=RECOMMENDATIONS, group_name="recommendations", deps=TRIGGERS, kinds={"postgres"})
def recommendations(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Interventions for the ops team, highest priority first: check-in calls, tutor switches,
    goal reviews and billing/support follow-ups for customers at high or critical risk (from
    the churn model's factors), coaching sessions for underperforming tutors, and more slots or
    tutors where forecast demand outruns supply. Each has a reason in plain words with the
    value, an owner, a due date and an expiry; it clears itself when its trigger does. Grain:
    one row per recommendation; at most one open per (entity, type, reason)."""
    with warehouse.connect() as conn:
        summary = generate_recommendations(conn)
    return dg.MaterializeResult(
        metadata={
            "created": len(summary.created),
            "refreshed": summary.refreshed,
            "cleared": len(summary.cleared),
            "expired": len(summary.expired),
            "back_from_snooze": len(summary.unsnoozed),
            "candidates": summary.candidates,
            "held_back_by_cap": summary.capped,
            "over_type_limit": summary.over_limit,
            "open_by_type": dg.MetadataValue.json(summary.open_by_type),
            "families": ", ".join(summary.families),
        }
    )

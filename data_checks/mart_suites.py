"""Suites of the dbt marts: one blocking `valid_mart` check per `marts/<model>` asset, over the
rows the latest build wrote -- grain (not-null, unique keys), ranges and enumerations of the
columns the app, the alert rules and the models read."""

from __future__ import annotations

from data_checks.expectations import between, in_set, not_before, not_null
from data_checks.integrity import unique, unique_together
from data_checks.spec import NewRows, Severity, Spec, Suite

RISK_TIERS = ("low", "medium", "high", "critical")


def _mart(name: str, key: tuple[str, ...], specs: list[Spec], description: str) -> Suite:
    """A mart's suite reads the rows its latest dbt run wrote (`computed_at` is the run's
    wall-clock stamp on every row it inserted or replaced)."""
    asset = ("marts", name)
    return Suite(
        asset,
        "valid_mart",
        asset,
        Severity.ERROR,
        NewRows("computed_at"),
        (*not_null(*key, "computed_at"), *specs),
        key=key,
        description=description,
        skip_if_no_new_rows=True,
    )


RATES_30D = ("tutor_no_show_rate_30d", "tutor_cancellation_rate_30d", "rebooking_rate_30d")


def _tutor_window_rules() -> list[Spec]:
    return [
        *(between(c, 0, 1) for c in (*RATES_30D, "first_session_success_rate_30d")),
        between("avg_rating_30d", 1, 5),
        between("utilization_30d", 0),
        between("success_score", 0, 100),
        between("sessions_completed_30d", 0),
        not_before("sessions_scheduled_30d", "sessions_completed_30d"),
    ]


RISK_COMPONENTS = (
    "recency",
    "frequency",
    "rating",
    "support_calls",
    "goal_progress",
    "tutor_switching",
    "tenure",
)

MART_SUITES: list[Suite] = [
    _mart(
        "customer_health",
        ("customer_id",),
        [
            *not_null("risk_score", "risk_tier"),
            unique("customer_id"),
            between("risk_score", 0, 100),
            between("base_risk_score", 0, 100),
            in_set("risk_tier", RISK_TIERS),
            in_set("risk_tier_7d_ago", RISK_TIERS),
            in_set("scoring_profile", ("new", "established")),
            *(between(f"{c}_risk", 0, 1) for c in RISK_COMPONENTS),
            between("days_since_last_session", 0),
            between("sessions_30d", 0),
            between("avg_rating_30d", 1, 5),
            between("inbound_calls_30d", 0),
            between("goal_progress_pct", 0, 100),
            between("churn_probability", 0, 1),
        ],
        "One row per active customer: 0-100 risk score, tier and its components.",
    ),
    _mart(
        "customer_health_history",
        ("customer_id", "snapshot_date"),
        [
            unique_together("customer_id", "snapshot_date"),
            between("risk_score", 0, 100),
            in_set("risk_tier", RISK_TIERS),
            between("churn_probability", 0, 1),
        ],
        "One row per customer per day: the risk score as it stood that day.",
    ),
    _mart(
        "tutor_performance_daily",
        ("tutor_id", "performance_date"),
        [
            unique_together("tutor_id", "performance_date"),
            *(
                between(c, 0)
                for c in (
                    "sessions_scheduled",
                    "sessions_completed",
                    "tutor_no_shows",
                    "tutor_cancellations",
                    "customer_no_shows",
                    "customer_cancellations",
                    "ratings",
                )
            ),
            not_before("sessions_scheduled", "sessions_completed"),
            between("avg_rating", 1, 5),
            between("utilization", 0),
            *_tutor_window_rules(),
        ],
        "One row per tutor per day: that day's sessions and the trailing 30-day judgement.",
    ),
    _mart(
        "tutor_performance",
        ("tutor_id",),
        [
            unique("tutor_id"),
            between("weekly_available_hours", 0, 168),
            *_tutor_window_rules(),
        ],
        "One row per active tutor: performance over the last 30 days.",
    ),
    _mart(
        "supply_demand_hourly",
        ("subject_id", "hour_at"),
        [
            unique_together("subject_id", "hour_at"),
            *(
                between(c, 0)
                for c in (
                    "requested_sessions",
                    "filled_sessions",
                    "unfilled_requests",
                    "pending_requests",
                    "available_tutor_hours",
                    "booked_tutor_hours",
                    "open_tutor_hours",
                )
            ),
            not_before("requested_sessions", "filled_sessions"),
            between("fill_rate", 0, 1),
        ],
        "One row per subject per hour: requested vs filled sessions and tutor-hours.",
    ),
    _mart(
        "ops_kpis_daily",
        ("kpi_date",),
        [
            unique("kpi_date"),
            *(
                between(c, 0)
                for c in ("active_customers", "sessions_completed", "at_risk_customers")
            ),
            between("completion_rate", 0, 100),
            between("avg_rating", 1, 5),
            not_before("at_risk_customers", "critical_customers"),
        ],
        "One row per day: the overview KPIs with day-over-day and week-over-week changes.",
    ),
]

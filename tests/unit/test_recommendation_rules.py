"""The recommendation rules on plain rows: which interventions a customer, tutor or subject
gets, in what words, with what priority and dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerting.recommendation_rules import (
    customer_candidates,
    hour_ranges,
    supply_candidates,
    tutor_candidates,
)

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
EXPIRE = timedelta(days=14)


def raising(feature: str, reason: str, action: str | None = "Do it") -> dict:
    return {"feature": feature, "direction": "raises", "reason": reason, "action": action}


def customer(**overrides: object) -> dict:
    row: dict = {
        "customer_id": 5,
        "risk_tier": "high",
        "risk_score": 62,
        "top_risk_component": "recency",
        "days_since_last_session": 23,
        "sessions_30d": 1,
        "sessions_prev_30d": 3,
        "churn_probability": 0.5,
        "top_factors": None,
        "cancellation_requests_30d": 0,
    }
    return row | overrides


def test_churn_factors_of_one_kind_make_one_recommendation_with_every_reason() -> None:
    factors = [
        raising("recency_days", "no session in 23 days", "Call to re-engage"),
        raising("gap_ratio", "current gap 3.1x their usual time between sessions"),
        raising("tutor_failures_90d", "2 sessions cancelled or missed by the tutor in 90 days"),
        {**raising("support_calls_30d", "0 support calls"), "direction": "lowers"},
    ]
    found = {
        c.rec_type: c for c in customer_candidates([customer(top_factors=factors)], NOW, EXPIRE)
    }
    assert set(found) == {"check_in_call", "tutor_switch"}
    call = found["check_in_call"]
    assert call.reason == (
        "no session in 23 days; current gap 3.1x their usual time between sessions"
        " (high risk, 50% churn probability)"
    )
    assert call.action == "Call to re-engage"
    assert call.priority == 0.5 * (1 + 1 + 3)
    assert (call.due_at, call.expires_at) == (NOW + timedelta(days=3), NOW + EXPIRE)
    assert found["tutor_switch"].reason_code == "tutor_unreliable"


def test_without_a_churn_score_the_health_component_speaks_and_cancellations_need_billing() -> None:
    row = customer(churn_probability=None, risk_tier="critical", cancellation_requests_30d=1)
    found = {c.key[2:]: c for c in customer_candidates([row], NOW, EXPIRE)}
    assert set(found) == {
        ("check_in_call", "disengaging"),
        ("support_follow_up", "cancellation_request"),
    }
    assert found[("check_in_call", "disengaging")].reason == (
        "no session in 23 days (critical risk, score 62)"
    )
    assert found[("check_in_call", "disengaging")].priority == 0.62 * 5
    assert found[("support_follow_up", "cancellation_request")].reason.startswith(
        "asked support to cancel (1 cancellation request in the last 30 days)"
    )


def test_low_and_medium_risk_customers_get_nothing() -> None:
    rows = [customer(risk_tier="low"), customer(risk_tier="medium"), customer(risk_tier=None)]
    assert customer_candidates(rows, NOW, EXPIRE) == []


def test_only_flagged_tutors_get_coaching_with_the_marts_reason() -> None:
    rows = [
        {
            "tutor_id": 7,
            "is_underperforming": True,
            "success_score": 40,
            "sessions_scheduled_30d": 10,
            "underperforming_reason": "average rating 3.00 < 3.45",
        },
        {"tutor_id": 8, "is_underperforming": False, "success_score": 90},
    ]
    [coaching] = tutor_candidates(rows, NOW, EXPIRE)
    assert coaching.entity_id == 7
    assert (
        coaching.reason == "average rating 3.00 < 3.45 (10 sessions in 30 days, success score 40)"
    )
    assert coaching.priority == 6.0


def test_supply_gaps_ask_for_slots_or_tutors_within_the_horizon() -> None:
    def hour(ahead: int, gap: float, available: float) -> dict:
        return {
            "subject_id": 3,
            "subject_name": "Algebra",
            "hour_at": NOW + timedelta(hours=ahead),
            "hours_ahead": ahead,
            "forecast_requested_sessions": available + gap,
            "available_tutor_hours": available,
            "forecast_supply_gap": gap,
        }

    rows = [hour(20, 2, 3), hour(21, 3, 3), hour(30, 4, 0), hour(50, 9, 0), hour(22, -1, 5)]
    found = {c.rec_type: c for c in supply_candidates(rows, NOW, horizon_hours=48)}
    assert set(found) == {"open_slots", "activate_tutors"}
    slots = found["open_slots"]
    assert slots.reason == (
        "Algebra: 11 sessions forecast against 6 tutor-hours available - 5 short over 2 hours"
        " in the next 48 h (Wed 08:00-10:00 UTC)"
    )
    assert slots.priority == 5
    assert slots.due_at == NOW + timedelta(hours=20) - timedelta(hours=12)
    assert slots.expires_at == NOW + timedelta(hours=22)
    assert found["activate_tutors"].priority == 4  # the hour 50 h ahead is past the horizon


def test_hour_ranges_join_consecutive_hours() -> None:
    start = datetime(2026, 3, 10, 16, tzinfo=UTC)
    hours = [start, start + timedelta(hours=1), start + timedelta(hours=2), start + timedelta(1)]
    assert hour_ranges(hours) == "Tue 16:00-19:00, Wed 16:00-17:00 UTC"
    assert hour_ranges([]) == ""

"""Which recommendations the current data calls for: pure functions from mart rows to candidates.

No database here, so every rule is unit-tested on plain dicts. `recommendations.py` reads the rows,
calls these, and writes the result.

- Customers in the high or critical risk tier (`marts.customer_health`) get one recommendation per
  kind of intervention their churn factors point to (`ml.churn_scores.top_factors`, the factors
  that raise the risk, already in plain words with the customer's value). Without a churn score
  the tier's biggest component stands in. A cancellation request always asks for a billing and
  support follow-up. Priority: churn probability x the sessions at stake (1 + completed sessions
  in the last 60 days).
- Tutors flagged `is_underperforming` in `marts.tutor_performance` get a coaching session, with
  the mart's reason. Priority: the success score's shortfall x the sessions they gave.
- Subjects whose forecast demand exceeds planned supply in the coming hours
  (`marts.demand_supply_gaps_hourly`): open more slots where tutors teach at those hours, activate
  tutors where nobody does. Priority: the missing sessions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

Row = Mapping[str, Any]

# rec_type -> the family (entity) it belongs to
CUSTOMER_TYPES = ("check_in_call", "tutor_switch", "goal_review", "support_follow_up")
TUTOR_TYPES = ("coaching_session",)
SUPPLY_TYPES = ("open_slots", "activate_tutors")

# Churn-model feature -> (recommendation type, reason code). The reason code names the kind of
# problem, so one customer gets one check-in call for "disengaging" however many of the
# disengagement features the model ranks on top.
FEATURE_RECS: dict[str, tuple[str, str]] = {
    **{
        feature: ("check_in_call", "disengaging")
        for feature in (
            "recency_days",
            "sessions_per_active_week",
            "sessions_per_tenure_week",
            "mean_gap_days",
            "gap_ratio",
            "recent_sessions_30d",
            "prior_sessions_90d",
            "session_trend",
            "bookings_ahead",
        )
    },
    "rating_avg_90d": ("tutor_switch", "low_ratings"),
    "rating_last": ("tutor_switch", "low_ratings"),
    "tutor_changes_90d": ("tutor_switch", "tutor_changes"),
    "tutor_failures_90d": ("tutor_switch", "tutor_unreliable"),
    "customer_age_days": ("goal_review", "early_customer"),
    "lifetime_sessions": ("goal_review", "early_customer"),
    "lifetime_minutes": ("goal_review", "early_customer"),
    "customer_cancellations_90d": ("goal_review", "customer_cancellations"),
    "support_calls_30d": ("support_follow_up", "support_contacts"),
}

ACTIONS = {
    "check_in_call": "Check-in call: re-engage the customer and book the next session",
    "tutor_switch": "Offer the customer a better-matched, reliable tutor",
    "goal_review": "Review the customer's goal and study plan with them",
    "support_follow_up": "Customer success follows up on their support contacts",
    "cancellation_request": (
        "Billing/support follow-up: call the customer before the cancellation goes through"
    ),
    "coaching_session": "Book a coaching session with the tutor on the weak points",
    "open_slots": "Ask tutors who teach the subject to open extra slots in these hours",
    "activate_tutors": "Activate or recruit tutors for the subject in these hours",
}

# Who works the recommendation: the role in the app and, in details, the team.
TEAMS = {
    "check_in_call": "customer success",
    "tutor_switch": "customer success",
    "goal_review": "customer success",
    "support_follow_up": "customer success",
    "coaching_session": "tutor quality",
    "open_slots": "recruiting",
    "activate_tutors": "recruiting",
}

DUE_BY_TIER = {"critical": timedelta(days=1), "high": timedelta(days=3)}
TUTOR_DUE = timedelta(days=7)
# Supply work has to land before the gap: due this long before its first hour.
SUPPLY_LEAD = timedelta(hours=12)


@dataclass(frozen=True)
class Candidate:
    """One recommendation the data calls for now (not yet checked against what exists)."""

    entity_type: str
    entity_id: int
    rec_type: str
    reason_code: str
    reason: str
    action: str
    priority: float
    due_at: datetime
    expires_at: datetime
    owner_role: str = "operator"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int, str, str]:
        return (self.entity_type, self.entity_id, self.rec_type, self.reason_code)


def _plural(n: float, one: str, many: str) -> str:
    return f"{n:.0f} {one if round(n) == 1 else many}"


def _number(row: Row, column: str) -> float | None:
    value = row.get(column)
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _health_reason(component: str, row: Row) -> tuple[str, str, str] | None:
    """(rec_type, reason_code, words) for the health score's top component, when no churn
    score explains the customer."""
    days = _number(row, "days_since_last_session")
    sessions_30d = _number(row, "sessions_30d") or 0
    sessions_prev = _number(row, "sessions_prev_30d") or 0
    rating = _number(row, "avg_rating_30d")
    calls = _number(row, "inbound_calls_30d") or 0
    goal = _number(row, "goal_progress_pct")
    switches = _number(row, "tutor_switches_90d") or 0
    tenure = _number(row, "tenure_days") or 0
    if component == "recency":
        words = (
            f"no session in {_plural(days, 'day', 'days')}" if days is not None else "no session"
        )
        return "check_in_call", "disengaging", words
    if component == "frequency":
        words = (
            f"{_plural(sessions_30d, 'session', 'sessions')} in the last 30 days, "
            f"{sessions_prev:.0f} in the 30 days before"
        )
        return "check_in_call", "disengaging", words
    if component == "rating" and rating is not None:
        return "tutor_switch", "low_ratings", f"average rating {rating:.1f} in the last 30 days"
    if component == "support_calls":
        words = _plural(calls, "support call", "support calls") + " in the last 30 days"
        return "support_follow_up", "support_contacts", words
    if component == "goal_progress" and goal is not None:
        return "goal_review", "goal_progress", f"only {goal:.0f}% of their goal reached"
    if component == "tutor_switching":
        words = f"changed tutor {_plural(switches, 'time', 'times')} in 90 days"
        return "tutor_switch", "tutor_changes", words
    if component == "tenure":
        return "goal_review", "early_customer", f"customer for {_plural(tenure, 'day', 'days')}"
    return None


def customer_candidates(rows: Iterable[Row], now: datetime, expire: timedelta) -> list[Candidate]:
    """Recommendations for customers at high or critical risk.

    Each row: a `marts.customer_health` row plus `churn_probability` and `top_factors` (the
    list of factor dicts of the customer's newest churn score, or None without one).
    """
    out: list[Candidate] = []
    for row in rows:
        tier = row.get("risk_tier")
        if tier not in DUE_BY_TIER:
            continue
        customer_id = int(row["customer_id"])
        probability = _number(row, "churn_probability")
        risk_score = _number(row, "risk_score") or 0.0
        likelihood = probability if probability is not None else risk_score / 100
        sessions_60d = (_number(row, "sessions_30d") or 0) + (
            _number(row, "sessions_prev_30d") or 0
        )
        priority = round(likelihood * (1 + sessions_60d), 4)
        risk_words = (
            f"{tier} risk, {probability:.0%} churn probability"
            if probability is not None
            else f"{tier} risk, score {risk_score:.0f}"
        )
        # (rec_type, reason_code) -> [reasons], action
        found: dict[tuple[str, str], tuple[list[str], str]] = {}
        factors = [
            f
            for f in (row.get("top_factors") or [])
            if f.get("direction") == "raises" and f.get("feature") in FEATURE_RECS
        ]
        for factor in factors:
            key = FEATURE_RECS[factor["feature"]]
            reasons, action = found.setdefault(key, ([], factor.get("action") or ACTIONS[key[0]]))
            reasons.append(str(factor.get("reason") or factor["feature"]))
        if not factors:
            fallback = _health_reason(str(row.get("top_risk_component") or ""), row)
            if fallback is not None:
                found[(fallback[0], fallback[1])] = ([fallback[2]], ACTIONS[fallback[0]])
        cancellations = _number(row, "cancellation_requests_30d") or 0
        if cancellations > 0:
            requests = _plural(cancellations, "cancellation request", "cancellation requests")
            found[("support_follow_up", "cancellation_request")] = (
                [f"asked support to cancel ({requests} in the last 30 days)"],
                ACTIONS["cancellation_request"],
            )
        details = {
            "team": None,
            "risk_tier": tier,
            "risk_score": risk_score,
            "churn_probability": probability,
            "sessions_60d": sessions_60d,
        }
        for (rec_type, reason_code), (reasons, action) in found.items():
            out.append(
                Candidate(
                    entity_type="customer",
                    entity_id=customer_id,
                    rec_type=rec_type,
                    reason_code=reason_code,
                    reason=f"{'; '.join(reasons)} ({risk_words})",
                    action=action,
                    priority=priority,
                    due_at=now + DUE_BY_TIER[tier],
                    expires_at=now + expire,
                    details={**details, "team": TEAMS[rec_type]},
                )
            )
    return out


def tutor_candidates(rows: Iterable[Row], now: datetime, expire: timedelta) -> list[Candidate]:
    """A coaching session for every tutor `marts.tutor_performance` flags as underperforming."""
    out: list[Candidate] = []
    for row in rows:
        if not row.get("is_underperforming"):
            continue
        score = _number(row, "success_score")
        sessions = _number(row, "sessions_scheduled_30d") or 0
        shortfall = (100 - score) / 100 if score is not None else 0.5
        score_words = f", success score {score:.0f}" if score is not None else ""
        out.append(
            Candidate(
                entity_type="tutor",
                entity_id=int(row["tutor_id"]),
                rec_type="coaching_session",
                reason_code="underperforming",
                reason=(
                    f"{row.get('underperforming_reason') or 'underperforming'} "
                    f"({_plural(sessions, 'session', 'sessions')} in 30 days{score_words})"
                ),
                action=ACTIONS["coaching_session"],
                priority=round(shortfall * sessions, 4),
                due_at=now + TUTOR_DUE,
                expires_at=now + expire,
                details={
                    "team": TEAMS["coaching_session"],
                    "success_score": score,
                    "sessions_scheduled_30d": sessions,
                    "underperforming_reason": row.get("underperforming_reason"),
                },
            )
        )
    return out


def hour_ranges(hours: Sequence[datetime]) -> str:
    """Consecutive hours as ranges, in UTC: "Tue 16:00-19:00, Wed 09:00-10:00 UTC"."""
    ordered = sorted(set(hours))
    if not ordered:
        return ""
    runs: list[tuple[datetime, datetime]] = []
    start = end = ordered[0]
    for hour in ordered[1:]:
        if hour - end == timedelta(hours=1):
            end = hour
            continue
        runs.append((start, end))
        start = end = hour
    runs.append((start, end))
    parts = [
        f"{a:%a %H:%M}-{(b + timedelta(hours=1)):%H:%M}"
        if a.date() == b.date()
        else f"{a:%a %H:%M}-{(b + timedelta(hours=1)):%a %H:%M}"
        for a, b in runs
    ]
    return ", ".join(parts) + " UTC"


def supply_candidates(rows: Iterable[Row], now: datetime, horizon_hours: int) -> list[Candidate]:
    """Per subject: where forecast demand exceeds the tutor-hours available within the horizon.

    Rows: `marts.demand_supply_gaps_hourly`. Hours where some tutor teaches the subject ask
    for more slots (`open_slots`); hours where nobody does, for more tutors (`activate_tutors`).
    """
    groups: dict[tuple[int, str], list[Row]] = {}
    names: dict[int, str] = {}
    for row in rows:
        gap = _number(row, "forecast_supply_gap") or 0
        ahead = _number(row, "hours_ahead")
        if gap <= 0 or ahead is None or ahead >= horizon_hours:
            continue
        subject_id = int(row["subject_id"])
        names[subject_id] = str(row.get("subject_name") or f"subject {subject_id}")
        available = _number(row, "available_tutor_hours") or 0
        rec_type = "open_slots" if available > 0 else "activate_tutors"
        groups.setdefault((subject_id, rec_type), []).append(row)
    out: list[Candidate] = []
    for (subject_id, rec_type), hours in groups.items():
        missing = sum(_number(r, "forecast_supply_gap") or 0 for r in hours)
        demand = sum(_number(r, "forecast_requested_sessions") or 0 for r in hours)
        available = sum(_number(r, "available_tutor_hours") or 0 for r in hours)
        at = [r["hour_at"] for r in hours]
        first, last = min(at), max(at)
        when = hour_ranges(at)
        reason = (
            f"{names[subject_id]}: {demand:.0f} sessions forecast against "
            f"{_plural(available, 'tutor-hour', 'tutor-hours')} available - "
            f"{missing:.0f} short over {_plural(len(hours), 'hour', 'hours')} in the next "
            f"{horizon_hours} h ({when})"
        )
        out.append(
            Candidate(
                entity_type="subject",
                entity_id=subject_id,
                rec_type=rec_type,
                reason_code="forecast_gap",
                reason=reason,
                action=f"{ACTIONS[rec_type]}: {when}",
                priority=round(missing, 4),
                due_at=max(now, first - SUPPLY_LEAD),
                expires_at=last + timedelta(hours=1),
                details={
                    "team": TEAMS[rec_type],
                    "subject_name": names[subject_id],
                    "missing_sessions": round(missing, 2),
                    "forecast_sessions": round(demand, 2),
                    "available_tutor_hours": round(available, 2),
                    "hours": [h.isoformat() for h in sorted(at)],
                },
            )
        )
    return out

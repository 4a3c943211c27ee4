"""Churn factors in plain words, with the customer's value, and what to do about them.

`reason("recency_days", 23.4, raises=True)` -> "no session in 23 days";
`action("recency_days")` -> "Call to book the next session". The wording is per feature
and says the value the way an ops manager would; the action is the intervention the team
already runs for that kind of risk.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ml.features import CHANNEL_PREFIX

RE_ENGAGE = "Call to re-engage and book the next session"
QUALITY = "Review recent sessions with the customer and offer a better-matched tutor"
SUPPORT = "Customer success follows up on their support contacts"
ONE_TUTOR = "Match the customer with one consistent tutor"
TUTOR_RELIABILITY = "Apologise and rebook with a reliable tutor"
SCHEDULE = "Offer session times that fit the customer's schedule"
ONBOARDING = "Onboarding check-in: plan a study routine together"
GOAL_REVIEW = "Review the learning goal and the plan to reach it with the customer"


def _n(value: float) -> str:
    return f"{value:.0f}"


def _plural(value: float, one: str, many: str) -> str:
    return f"{_n(value)} {one if round(value) == 1 else many}"


def _trend(value: float, raises: bool) -> str:
    pct = round(abs(1 - value) * 100)
    if raises or value < 1:
        return f"sessions down {pct}% on their earlier pace"
    return f"sessions up {pct}% on their earlier pace"


def _rating_last(value: float, raises: bool) -> str:
    return f"rating fell to {value:.1f}" if raises else f"last rating {value:.1f}"


def _bookings(value: float, raises: bool) -> str:
    if value < 0.5:
        return "no session booked ahead"
    return _plural(value, "session", "sessions") + " booked ahead"


# feature -> (words for a value, words when the value is missing, intervention)
_WORDS: dict[str, tuple[Callable[[float, bool], str], str, str | None]] = {
    "recency_days": (lambda v, r: f"no session in {_plural(v, 'day', 'days')}", "", RE_ENGAGE),
    "customer_age_days": (
        lambda v, r: f"customer for {_plural(v, 'day', 'days')}",
        "",
        ONBOARDING,
    ),
    "lifetime_sessions": (
        lambda v, r: _plural(v, "session", "sessions") + " so far",
        "",
        ONBOARDING,
    ),
    "sessions_per_active_week": (
        lambda v, r: f"{v:.1f} sessions per active week",
        "",
        RE_ENGAGE,
    ),
    "sessions_per_tenure_week": (
        lambda v, r: f"{v:.1f} sessions per week as a customer",
        "",
        RE_ENGAGE,
    ),
    "lifetime_minutes": (
        lambda v, r: f"{v / 60:.0f} hours of tutoring so far",
        "",
        ONBOARDING,
    ),
    "mean_gap_days": (
        lambda v, r: f"usually {_plural(v, 'day', 'days')} between sessions",
        "fewer than two sessions so far",
        RE_ENGAGE,
    ),
    "gap_ratio": (
        lambda v, r: f"current gap {v:.1f}x their usual time between sessions",
        "no usual rhythm yet",
        RE_ENGAGE,
    ),
    "recent_sessions_30d": (
        lambda v, r: _plural(v, "session", "sessions") + " in the last 30 days",
        "",
        RE_ENGAGE,
    ),
    "prior_sessions_90d": (
        lambda v, r: _plural(v, "session", "sessions") + " in the 90 days before that",
        "",
        RE_ENGAGE,
    ),
    "session_trend": (_trend, "", RE_ENGAGE),
    "rating_avg_90d": (
        lambda v, r: f"average rating {v:.1f} over 90 days",
        "no rated session in 90 days",
        QUALITY,
    ),
    "rating_last": (_rating_last, "no rating yet", QUALITY),
    "support_calls_30d": (
        lambda v, r: _plural(v, "support call", "support calls") + " in the last 30 days",
        "",
        SUPPORT,
    ),
    "tutor_changes_90d": (
        lambda v, r: f"changed tutor {_plural(v, 'time', 'times')} in 90 days",
        "",
        ONE_TUTOR,
    ),
    "tutor_failures_90d": (
        lambda v, r: (
            _plural(v, "session", "sessions") + " cancelled or missed by the tutor in 90 days"
        ),
        "",
        TUTOR_RELIABILITY,
    ),
    "customer_cancellations_90d": (
        lambda v, r: f"cancelled or missed {_plural(v, 'session', 'sessions')} in 90 days",
        "",
        SCHEDULE,
    ),
    "bookings_ahead": (_bookings, "", RE_ENGAGE),
    "goal_progress_pct": (
        lambda v, r: f"{v:.0f}% of their goal reached",
        "goal progress unknown",
        GOAL_REVIEW,
    ),
}


def reason(feature: str, value: float | None, raises: bool) -> str:
    """The factor in plain words with the customer's value ("no session in 23 days")."""
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if feature.startswith(CHANNEL_PREFIX):
        channel = feature.removeprefix(CHANNEL_PREFIX).replace("_", " ")
        joined = not missing and value is not None and value >= 0.5
        return f"joined through {channel}" if joined else f"did not join through {channel}"
    words = _WORDS.get(feature)
    if words is None:
        label = feature.replace("_", " ")
        return f"{label}: unknown" if missing else f"{label}: {value:.4g}"
    describe, when_missing, _ = words
    if missing or value is None:
        return when_missing or f"no {feature.replace('_', ' ')} yet"
    return describe(float(value), raises)


def action(feature: str, raises: bool) -> str | None:
    """The suggested intervention for a factor that raises the risk (None when it lowers it,
    or when nothing the team does changes it, like the acquisition channel)."""
    if not raises or feature.startswith(CHANNEL_PREFIX):
        return None
    words = _WORDS.get(feature)
    return words[2] if words else None

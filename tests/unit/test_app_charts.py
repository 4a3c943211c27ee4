"""Chart builders and the overview page's pure formatting helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app_streamlit.charts import TIER_COLORS, tier_distribution_chart, tier_frame
from app_streamlit.views.overview import format_factors, freshness_label, risk_table

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_tier_frame_has_every_tier_in_severity_order() -> None:
    frame = tier_frame({"critical": 2, "low": 10})
    assert list(frame["risk_tier"]) == ["low", "medium", "high", "critical"]
    assert list(frame["customers"]) == [10, 0, 0, 2]


def test_unknown_tiers_are_kept_after_the_known_ones() -> None:
    frame = tier_frame({"low": 1, "zzz": 3})
    assert list(frame["risk_tier"])[-1] == "zzz"


def test_tier_chart_spec() -> None:
    spec = tier_distribution_chart({"low": 5, "medium": 3, "high": 2, "critical": 1}).to_dict()
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["x"]["field"] == "risk_tier"
    assert spec["encoding"]["x"]["sort"] == ["low", "medium", "high", "critical"]
    assert spec["encoding"]["y"]["field"] == "customers"
    scale = spec["encoding"]["color"]["scale"]
    assert scale["domain"] == ["low", "medium", "high", "critical"]
    assert scale["range"] == [TIER_COLORS[t] for t in scale["domain"]]
    values = next(iter(spec["datasets"].values()))
    assert {v["risk_tier"]: v["customers"] for v in values} == {
        "low": 5,
        "medium": 3,
        "high": 2,
        "critical": 1,
    }


@pytest.mark.parametrize(
    ("age", "label"),
    [
        (timedelta(seconds=5), "5 s"),
        (timedelta(minutes=7, seconds=59), "7 min"),
        (timedelta(hours=3), "3 h"),
        (timedelta(days=5), "5 d"),
        (timedelta(seconds=-30), "0 s"),  # clock skew never shows a negative age
    ],
)
def test_freshness_label(age: timedelta, label: str) -> None:
    assert freshness_label(NOW - age, NOW) == label


def test_freshness_label_without_timestamp() -> None:
    assert freshness_label(None, NOW) == "—"
    assert freshness_label(datetime(2026, 1, 1, 11, 0), NOW) == "1 h"  # naive means UTC


def test_format_factors_accepts_dicts_and_strings() -> None:
    factors = [
        {"feature": "days_since_last_session", "shap": 0.314},
        {"name": "inbound_calls_30d", "contribution": -0.2},
        {"feature": "tenure_days"},
        {"feature": "ignored_fourth", "shap": 0.01},
    ]
    assert format_factors(factors) == (
        "days_since_last_session (+0.31), inbound_calls_30d (-0.20), tenure_days"
    )
    assert format_factors(["a", "b"]) == "a, b"
    assert format_factors(None) == ""


def test_format_factors_shows_the_plain_words_and_action_of_the_raising_factors() -> None:
    factors = [
        {
            "feature": "recency_days",
            "shap": 1.2,
            "direction": "raises",
            "reason": "no session in 23 days",
            "action": "Call to re-engage and book the next session",
        },
        {
            "feature": "lifetime_sessions",
            "shap": -0.4,
            "direction": "lowers",
            "reason": "40 sessions so far",
            "action": None,
        },
        {
            "feature": "support_calls_30d",
            "shap": 0.3,
            "direction": "raises",
            "reason": "3 support calls in the last 30 days",
            "action": "Customer success follows up on their support contacts",
        },
    ]
    assert format_factors(factors) == (
        "no session in 23 days; 3 support calls in the last 30 days"
        " -> Call to re-engage and book the next session"
    )
    assert "recency_days" not in format_factors(factors)


def test_risk_table_has_fixed_columns() -> None:
    frame = risk_table([{"customer_id": 1, "risk_score": 90.0, "top_factors": ["x"]}])
    assert list(frame.columns)[:4] == [
        "customer_id",
        "risk_score",
        "risk_tier",
        "churn_probability",
    ]
    assert frame.loc[0, "top_factors"] == "x"

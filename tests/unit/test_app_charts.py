"""Chart builders and the overview page's pure formatting helpers."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import pytest

from app_streamlit.charts import OKABE_ITO, TIER_COLORS, tier_distribution_chart, tier_frame
from app_streamlit.views.overview import format_factors, freshness_label, risk_table

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


# Machado, Oliveira & Fernandes (2009), severity 1.0, on linear RGB.
CVD = {
    "protanopia": (
        (0.152286, 1.052583, -0.204868),
        (0.114503, 0.786281, 0.099216),
        (-0.003882, -0.048116, 1.051998),
    ),
    "deuteranopia": (
        (0.367322, 0.860646, -0.227968),
        (0.280085, 0.672501, 0.047413),
        (-0.011820, 0.042940, 0.968881),
    ),
    "tritanopia": (
        (1.255528, -0.076749, -0.178779),
        (-0.078411, 0.930809, 0.147602),
        (0.004733, 0.691367, 0.303900),
    ),
}


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _seen_as_lab(hex_color: str, matrix: tuple) -> tuple[float, float, float]:
    """CIELAB of the colour as a viewer with that deficiency sees it."""
    rgb = [_linear(int(hex_color[i : i + 2], 16)) for i in (1, 3, 5)]
    r, g, b = (
        min(1.0, max(0.0, sum(m * c for m, c in zip(row, rgb, strict=True)))) for row in matrix
    )
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def _closest_pair(colors: dict[str, str], matrix: tuple) -> float:
    seen = {tier: _seen_as_lab(c, matrix) for tier, c in colors.items()}
    return min(math.dist(seen[a], seen[b]) for a, b in itertools.combinations(seen, 2))


@pytest.mark.parametrize("deficiency", sorted(CVD))
def test_tier_colours_stay_apart_for_colour_blind_viewers(deficiency: str) -> None:
    """Every two tiers differ by a clearly visible step (CIELAB distance >= 15) as a viewer
    with protanopia, deuteranopia or tritanopia sees them. The former green/amber/orange/red
    tiers fell to 13 for deuteranopia (medium and high nearly alike)."""
    assert set(TIER_COLORS.values()) <= set(OKABE_ITO)
    assert _closest_pair(TIER_COLORS, CVD[deficiency]) >= 15
    former = {"low": "#2e7d32", "medium": "#f9a825", "high": "#ef6c00", "critical": "#c62828"}
    assert _closest_pair(former, CVD["deuteranopia"]) < 15  # the check can fail


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

"""Chart builders: plain data in, Altair chart out, no Streamlit (so tests can inspect them)."""

from __future__ import annotations

from collections.abc import Mapping

import altair as alt
import pandas as pd

TIER_ORDER = ("low", "medium", "high", "critical")
TIER_COLORS = {"low": "#2e7d32", "medium": "#f9a825", "high": "#ef6c00", "critical": "#c62828"}


def tier_frame(counts: Mapping[str, int]) -> pd.DataFrame:
    """One row per tier in severity order, zero for tiers nobody is in (so bars never move)."""
    known = [(tier, int(counts.get(tier, 0))) for tier in TIER_ORDER]
    unknown = sorted((t, int(n)) for t, n in counts.items() if t not in TIER_COLORS)
    return pd.DataFrame(known + unknown, columns=["risk_tier", "customers"])


def tier_distribution_chart(counts: Mapping[str, int]) -> alt.Chart:
    """Bar chart of customers per risk tier, coloured from green (low) to red (critical)."""
    frame = tier_frame(counts)
    order = list(frame["risk_tier"])
    domain = [t for t in order if t in TIER_COLORS]
    return (
        alt.Chart(frame, title="Customers by risk tier")
        .mark_bar()
        .encode(
            x=alt.X("risk_tier:N", sort=order, title="Risk tier", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("customers:Q", title="Customers"),
            color=alt.Color(
                "risk_tier:N",
                scale=alt.Scale(domain=domain, range=[TIER_COLORS[t] for t in domain]),
                legend=None,
            ),
            tooltip=[
                alt.Tooltip("risk_tier:N", title="Tier"),
                alt.Tooltip("customers:Q", title="Customers", format=","),
            ],
        )
    )

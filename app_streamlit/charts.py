"""Chart builders: plain data in, Altair chart out, no Streamlit (so tests can inspect them)."""

from __future__ import annotations

from collections.abc import Mapping

import altair as alt
import pandas as pd

# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
TIER_ORDER = ("low", "medium", "high", "critical")
# From Okabe-Ito, in the order of the air-quality index (green, orange, red, purple): green and
# red alone read as one colour to red-green colour-blind viewers (1 man in 12).
TIER_COLORS = {"low": "#009E73", "medium": "#E69F00", "high": "#D55E00", "critical": "#CC79A7"}


def tier_frame(counts: Mapping[str, int]) -> pd.DataFrame:
    """One row per tier in severity order, zero for tiers nobody is in (so bars never move)."""
    known = [(tier, int(counts.get(tier, 0))) for tier in TIER_ORDER]
    unknown = sorted((t, int(n)) for t, n in counts.items() if t not in TIER_COLORS)
    return pd.DataFrame(known + unknown, columns=["risk_tier", "customers"])


def tier_distribution_chart(counts: Mapping[str, int]) -> alt.Chart:
    """Bar chart of customers per risk tier, coloured from green (low) through orange and vermillion to purple (critical)."""
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

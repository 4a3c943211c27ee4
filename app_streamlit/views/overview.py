"""Overview: customer risk at a glance, open alerts, and the riskiest customers.

Reads marts.customer_health, app.alerts and ml.churn_scores through `data` (cached). The
headline metrics refresh on their own every 30 s; the rest refreshes with the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pandas as pd
import psycopg
import streamlit as st

from app_streamlit import data, session
from app_streamlit.charts import tier_distribution_chart

REFRESH_S = 30
TOP_N = 50
ALERTS_N = 20
EMPTY_MESSAGE = "No data yet: the pipeline has not built marts.customer_health"
EMPTY_MART_MESSAGE = "marts.customer_health is empty: no active customers yet."
WAREHOUSE_DOWN = "The warehouse is not reachable right now ({error}); retrying shortly."
TABLE_COLUMNS = [
    "customer_id",
    "risk_score",
    "risk_tier",
    "churn_probability",
    "top_factors",
    "days_since_last_session",
    "sessions_30d",
    "avg_rating_30d",
    "inbound_calls_30d",
    "tenure_days",
]
_CONTRIBUTION_KEYS = ("shap", "shap_value", "contribution", "impact", "value")


def freshness_label(computed_at: datetime | None, now: datetime) -> str:
    """How old the mart is, in the coarsest unit that still says something ("7 min")."""
    if computed_at is None:
        return "—"
    if computed_at.tzinfo is None:
        computed_at = computed_at.replace(tzinfo=UTC)
    seconds = max(0, int((now - computed_at).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def format_factors(top_factors: object, limit: int = 3) -> str:
    """The churn model's factors as one readable cell, in the plain words it stored with each
    score ("no session in 23 days; 3 support calls in the last 30 days -> Call to ..."); scores
    written before factors carried words fall back to "feature (+0.31), …"."""
    if not isinstance(top_factors, list):
        return ""
    worded = [f for f in top_factors[:limit] if isinstance(f, Mapping) and f.get("reason")]
    if worded:
        raising = [f for f in worded if f.get("direction", "raises") == "raises"] or worded
        action = next((f["action"] for f in raising if f.get("action")), None)
        words = "; ".join(str(f["reason"]) for f in raising)
        return f"{words} -> {action}" if action else words
    parts = []
    for factor in top_factors[:limit]:
        if isinstance(factor, Mapping):
            name = factor.get("feature") or factor.get("name") or factor.get("factor") or "?"
            weight = next(
                (factor[k] for k in _CONTRIBUTION_KEYS if isinstance(factor.get(k), int | float)),
                None,
            )
            parts.append(f"{name} ({weight:+.2f})" if weight is not None else str(name))
        else:
            parts.append(str(factor))
    return ", ".join(parts)


def risk_table(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    frame["top_factors"] = frame["top_factors"].map(format_factors)
    return frame


@st.fragment(run_every=REFRESH_S)
def live_metrics() -> None:
    """Headline numbers; a fragment so the timer reruns only this part, not the whole page."""
    if session.current_user() is None:  # logged out or deactivated since the page was drawn
        st.rerun()
    try:
        summary = data.health_summary()
        open_alerts = data.open_alert_count()
    except psycopg.OperationalError as exc:
        st.error(WAREHOUSE_DOWN.format(error=type(exc).__name__))
        return
    cols = st.columns(5)
    if summary is None:
        cols[3].metric("Open alerts", "—" if open_alerts is None else f"{open_alerts:,}")
        st.info(EMPTY_MESSAGE)
        return
    cols[0].metric("Active customers", f"{summary.customers:,}")
    cols[1].metric("At-risk customers", f"{summary.at_risk:,}", help="Risk tier high or critical")
    cols[2].metric("Critical", f"{summary.critical:,}")
    cols[3].metric("Open alerts", "—" if open_alerts is None else f"{open_alerts:,}")
    cols[4].metric(
        "Data freshness",
        freshness_label(summary.computed_at, datetime.now(UTC)),
        help=f"Age of marts.customer_health (computed_at {summary.computed_at or 'unknown'})",
    )
    if summary.customers == 0:
        st.info(EMPTY_MART_MESSAGE)


def render() -> None:
    session.require_user()
    st.title("📊 Overview")
    live_metrics()
    try:
        counts = data.tier_counts()
        top = data.top_risk_customers(TOP_N) if counts else None
        alerts = data.latest_alerts(ALERTS_N)
    except psycopg.OperationalError:
        return  # the metrics fragment already says the warehouse is down
    if counts:
        left, right = st.columns([1, 2])
        left.altair_chart(tier_distribution_chart(counts), width="stretch")
        with right:
            st.subheader(f"Top {TOP_N} riskiest customers")
            _risk_table(top or [])
    st.subheader("Latest alerts")
    if not alerts:
        st.caption("No unresolved alerts.")
    else:
        _alerts_table(alerts)


def _risk_table(rows: list[dict]) -> None:
    st.dataframe(
        risk_table(rows),
        hide_index=True,
        column_config={
            "customer_id": st.column_config.NumberColumn("Customer", format="%d"),
            "risk_score": st.column_config.ProgressColumn(
                "Risk score", min_value=0, max_value=100, format="%.0f"
            ),
            "risk_tier": "Tier",
            "churn_probability": st.column_config.NumberColumn("Churn prob.", format="percent"),
            "top_factors": "Top factors",
            "days_since_last_session": "Days since last session",
            "sessions_30d": "Sessions (30 d)",
            "avg_rating_30d": st.column_config.NumberColumn("Avg rating (30 d)", format="%.2f"),
            "inbound_calls_30d": "Support calls (30 d)",
            "tenure_days": "Tenure (days)",
        },
    )


def _alerts_table(rows: list[dict]) -> None:
    frame = pd.DataFrame(rows)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    st.dataframe(
        frame[["created_at", "severity", "status", "title", "rule", "entity_type", "entity_id"]],
        hide_index=True,
        column_config={
            "created_at": st.column_config.DatetimeColumn("Raised", format="YYYY-MM-DD HH:mm"),
            "severity": "Severity",
            "status": "Status",
            "title": "Alert",
            "rule": "Rule",
            "entity_type": "Entity",
            "entity_id": st.column_config.NumberColumn("Entity id", format="%d"),
        },
    )


if __name__ == "__main__":  # run as a page script by `st.navigation` in app.py
    render()

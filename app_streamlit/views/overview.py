"""Overview: the day's numbers at a glance, what needs attention now, and the riskiest customers.

Metric cards (value, change from yesterday, 14-day sparkline) come from marts.ops_kpis_daily,
open alerts by severity from app.alerts, the next 24 h's supply gaps from
marts.demand_supply_gaps_hourly and the most valuable open recommendations from
app.recommendations - all through the cached readers. The cards and the two lists are live
sections (see `live`); the tier chart and risk table refresh with the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pandas as pd
import psycopg
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from app_streamlit import data, live, overview_data, session, view_cache
from app_streamlit.charts import tier_distribution_chart
from app_streamlit.view_text import markdown_text

TOP_N = 50
ALERTS_N = 20
EMPTY_MESSAGE = "No data yet: the pipeline has not built marts.customer_health"
EMPTY_MART_MESSAGE = "marts.customer_health is empty: no active customers yet."
WAREHOUSE_DOWN = "The warehouse is not reachable right now ({error}); retrying shortly."
NO_GAPS_MART = (
    "No forecast gaps yet: marts.demand_supply_gaps_hourly appears once the forecasting job "
    "has run (`opsdash materialize`, or wait for its schedule)."
)
NO_RECOMMENDATIONS = (
    "No open recommendations. They are created by the pipeline from at-risk customers, "
    "tutors who need coaching and supply gaps; if this stays empty for a day, check the "
    "recommendation job's last run on the Models & data page."
)
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


def _format(label: str, value: float | None) -> str:
    if value is None:
        return "—"
    if label == "Completion rate":
        return f"{value:.1f}%"
    if label == "Average rating":
        return f"{value:.2f}"
    return f"{value:,.0f}"


def _format_change(label: str, change: float | None) -> str | None:
    if change is None:
        return None
    if label == "Completion rate":
        return f"{change:+.1f} pp"
    if label == "Average rating":
        return f"{change:+.2f}"
    return f"{change:+,.0f}"


INVERSE = {"At-risk customers", "Open alerts"}  # fewer is better


def _cards() -> None:
    """Critical banner and the metric cards (value, change from yesterday, 14-day sparkline)."""
    if session.current_user() is None:  # logged out or deactivated since the page was drawn
        st.rerun()
    try:
        kpis = overview_data.kpi_rows()
        by_severity = overview_data.open_alerts_by_severity()
        critical = overview_data.open_critical_alerts() if by_severity else []
        summary = data.health_summary() if not kpis else None
    except psycopg.OperationalError as exc:
        st.error(WAREHOUSE_DOWN.format(error=type(exc).__name__))
        return
    if by_severity and by_severity["critical"]:
        _critical_banner(by_severity["critical"], critical)
    cards = overview_data.cards(kpis or [])
    if not kpis and summary is not None:  # no KPI mart yet: today's numbers from the health mart
        fallback = {"Active customers": summary.customers, "At-risk customers": summary.at_risk}
        cards = [
            overview_data.Card(c.label, fallback.get(c.label), None, [], c.help) for c in cards
        ]
    cols = st.columns(len(cards) + 1)
    for col, card in zip(cols, cards, strict=False):
        col.metric(
            card.label,
            _format(card.label, card.value),
            _format_change(card.label, card.change),
            delta_color="inverse" if card.label in INVERSE else "normal",
            delta_description="vs yesterday" if card.change is not None else None,
            help=card.help,
            border=True,
            chart_data=card.series if len(card.series) > 1 else None,
        )
    _open_alerts_card(cols[-1], by_severity, kpis or [])
    computed_at = data.parse_ts(kpis[-1]["computed_at"]) if kpis else None
    if computed_at is None and summary is not None:
        computed_at = summary.computed_at
    if not kpis and summary is None:
        st.info(EMPTY_MESSAGE)
    elif summary is not None and summary.customers == 0:
        st.info(EMPTY_MART_MESSAGE)
    st.caption(
        f"Data as of {freshness_label(computed_at, datetime.now(UTC))} ago"
        " (the pipeline rebuilds the marts every few minutes)"
    )


def _critical_banner(count: int, alerts: list[dict]) -> None:
    noun = "alert" if count == 1 else "alerts"
    titles = "; ".join(markdown_text(str(a["title"])) for a in alerts[:3])
    more = "" if count <= 3 else f" and {count - 3} more"
    st.error(
        f"**{count} open critical {noun}**: {titles}{more}. "
        "[Open them](/alerts?status=open&severity=critical)",
        icon=":material/error:",
    )


def _open_alerts_card(
    col: DeltaGenerator, by_severity: dict[str, int] | None, kpis: list[dict]
) -> None:
    series = [float(r["open_alerts"]) for r in kpis if r.get("open_alerts") is not None]
    change = kpis[-1].get("open_alerts_change_1d") if kpis else None
    if by_severity is None:
        col.metric("Open alerts", "—", border=True)
        return
    col.metric(
        "Open alerts",
        f"{sum(by_severity.values()):,}",
        _format_change("Open alerts", None if change is None else float(change)),
        delta_color="inverse",
        delta_description="vs yesterday" if change is not None else None,
        help="Alerts nobody has acknowledged yet, by severity",
        border=True,
        chart_data=series if len(series) > 1 else None,
    )
    col.caption(" · ".join(f"{s} {by_severity[s]:,}" for s in overview_data.SEVERITIES))


def _gaps_and_recommendations() -> None:
    try:
        gaps = overview_data.top_gaps()
        recs = overview_data.top_recommendations()
    except psycopg.OperationalError:
        st.error(WAREHOUSE_DOWN.format(error="OperationalError"))
        return
    left, right = st.columns(2)
    with left:
        st.subheader("Supply gaps, next 24 h")
        if gaps is None:
            st.info(NO_GAPS_MART)
        elif not gaps:
            st.success("No subject is expected to run short of tutors in the next 24 hours.")
        else:
            _gaps_table(gaps)
    with right:
        st.subheader("Top recommendations")
        if not recs:
            st.info(NO_RECOMMENDATIONS)
        else:
            _recommendations_table(recs)


def _gaps_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["hour_at"] = pd.to_datetime(frame["hour_at"], utc=True)
    return frame[
        [
            "subject_name",
            "hour_at",
            "forecast_requested_sessions",
            "available_tutor_hours",
            "forecast_supply_gap",
        ]
    ]


def _gaps_table(rows: list[dict]) -> None:
    st.dataframe(
        view_cache.table("overview_gaps", rows, lambda: _gaps_frame(rows)),
        hide_index=True,
        column_config={
            "subject_name": st.column_config.TextColumn("Subject"),
            "hour_at": st.column_config.DatetimeColumn("Hour (UTC)", format="ddd HH:mm"),
            "forecast_requested_sessions": st.column_config.NumberColumn(
                "Expected sessions", format="%.1f"
            ),
            "available_tutor_hours": st.column_config.NumberColumn("Tutor-hours", format="%.0f"),
            "forecast_supply_gap": st.column_config.NumberColumn("Shortfall", format="%.1f"),
        },
    )


def _recommendations_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["entity"] = [
        f"{t} {i}" for t, i in zip(frame["entity_type"], frame["entity_id"], strict=True)
    ]
    return frame[["priority", "entity", "action", "reason"]]


def _recommendations_table(rows: list[dict]) -> None:
    st.dataframe(
        view_cache.table("overview_recs", rows, lambda: _recommendations_frame(rows)),
        hide_index=True,
        column_config={
            "priority": st.column_config.NumberColumn("Priority", format="%.0f"),
            "entity": st.column_config.TextColumn("For"),
            "action": st.column_config.TextColumn("Suggested action"),
            "reason": st.column_config.TextColumn("Why"),
        },
    )
    st.markdown("[All recommendations](/recommendations)")


def render() -> None:
    session.require_user()
    st.title("Overview")
    live.section(_cards, key="overview_cards")
    live.section(_gaps_and_recommendations, key="overview_lists")
    try:
        counts = data.tier_counts()
        top = data.top_risk_customers(TOP_N) if counts else None
        alerts = data.latest_alerts(ALERTS_N)
    except psycopg.OperationalError:
        return  # the metrics section already says the warehouse is down
    if counts:
        left, right = st.columns([1, 2])
        view_cache.chart(
            "overview_tiers", counts, lambda: tier_distribution_chart(counts), where=left
        )
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
        view_cache.table("overview_risk", rows, lambda: risk_table(rows)),
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


def _alerts_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame[["created_at", "severity", "status", "title", "rule", "entity_type", "entity_id"]]


def _alerts_table(rows: list[dict]) -> None:
    st.dataframe(
        view_cache.table("overview_alerts", rows, lambda: _alerts_frame(rows)),
        hide_index=True,
        column_config={
            "created_at": st.column_config.DatetimeColumn(
                "Raised (UTC)", format="YYYY-MM-DD HH:mm"
            ),
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

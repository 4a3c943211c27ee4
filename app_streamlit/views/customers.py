"""Customers: a searchable, filterable, sortable, paginated list of marts.customer_health, and a
detail view (`?customer_id=`) with the score history, the components, the churn score with its
top 3 risk factors in plain words and the suggested intervention, the latest sessions and support
calls, and the customer's alerts and recommendations. Filters live in the URL so a view can be
shared. Read-only for every role (acting on an alert or recommendation is on their own pages).
"""

from __future__ import annotations

import hashlib
from datetime import UTC

import pandas as pd
import psycopg
import streamlit as st

from app_streamlit import customers_data, session, view_cache
from app_streamlit.charts import TIER_COLORS, TIER_ORDER
from app_streamlit.data import parse_ts
from app_streamlit.view_charts import contributions_chart, score_history_chart
from app_streamlit.view_params import (
    CUSTOMER_SORTS,
    SEGMENTS,
    TIERS,
    TRENDS,
    CustomerFilters,
    page_count,
    parse_customer_filters,
    parse_id,
    to_query_params,
)
from app_streamlit.view_text import markdown_text

EMPTY_MESSAGE = (
    "No customer health data yet: run the pipeline (`opsdash materialize`, or wait for the "
    "schedule) to build marts.customer_health."
)
NO_MATCH_MESSAGE = "No customer matches these filters. Clear the search or pick another tier."
LOADING = "Loading customers…"
SEGMENT_LABELS = {"": "any", "new": "new customers", "established": "established"}
NO_CALLS_VIEW = (
    "Support calls are not available yet: the pipeline builds staging.stg_support__inbound_calls "
    "with its first dbt run."
)
NOT_FOUND_MESSAGE = "Customer {customer_id} is not in marts.customer_health (inactive or unknown)."
WAREHOUSE_DOWN = "The warehouse is not reachable right now; reload the page in a minute."
SORT_LABELS = {
    "risk_desc": "Risk score, highest first",
    "risk_asc": "Risk score, lowest first",
    "change_desc": "Rising fastest (7 days)",
    "last_session": "Longest without a session",
    "customer_id": "Customer id",
}


# The tier as a coloured badge: a read-only multiselect cell holding one option, coloured by
# the column's option colours (the browser draws it; no per-cell styling in Python).
TIER_BADGE = st.column_config.MultiselectColumn(
    "Tier", options=list(TIER_ORDER), color=[TIER_COLORS[t] for t in TIER_ORDER]
)


def render() -> None:
    session.require_user()
    params = st.query_params.to_dict()
    customer_id = parse_id(params, "customer_id")
    try:
        with st.spinner(LOADING):
            if customer_id is not None:
                _detail(customer_id)
            else:
                _list(parse_customer_filters(params))
    except psycopg.OperationalError:
        st.error(WAREHOUSE_DOWN)


# ------------------------------------------------------------------------------------- list


def _list(initial: CustomerFilters) -> None:
    st.title("Customers")
    cols = st.columns([3, 1, 1, 1, 1, 2])
    q = cols[0].text_input(
        "Search name, e-mail or id", value=initial.q, key="customers_q", max_chars=100
    )
    tier = cols[1].selectbox(
        "Tier",
        ["", *TIERS],
        index=["", *TIERS].index(initial.tier),
        key="customers_tier",
        format_func=lambda v: v or "any",
    )
    trend = cols[2].selectbox(
        "Trend (7 days)",
        ["", *TRENDS],
        index=["", *TRENDS].index(initial.trend),
        key="customers_trend",
        format_func=lambda v: v or "any",
    )
    channel_options = ["", *customers_data.channels()]
    if initial.channel and initial.channel not in channel_options:
        channel_options.append(initial.channel)
    channel = cols[3].selectbox(
        "Channel",
        channel_options,
        index=channel_options.index(initial.channel),
        key="customers_channel",
        format_func=lambda v: v or "any",
    )
    segment = cols[4].selectbox(
        "Segment",
        ["", *SEGMENTS],
        index=["", *SEGMENTS].index(initial.segment),
        key="customers_segment",
        format_func=SEGMENT_LABELS.__getitem__,
        help="New customers (first weeks, scored with the new-customer weights) or established.",
    )
    sort = cols[5].selectbox(
        "Sort by",
        CUSTOMER_SORTS,
        index=CUSTOMER_SORTS.index(initial.sort),
        key="customers_sort",
        format_func=SORT_LABELS.__getitem__,
    )
    filters = CustomerFilters(
        q=q.strip(), tier=tier, trend=trend, channel=channel, segment=segment, sort=sort
    )
    same_filters = filters == CustomerFilters(**{**initial.__dict__, "page": 1})
    if same_filters:
        filters = initial
    result = customers_data.customer_page(filters)
    if result is None:
        st.info(EMPTY_MESSAGE)
        return
    rows, total = result
    pages = page_count(total)
    signature = hashlib.sha256(repr(filters.__dict__ | {"page": 0}).encode()).hexdigest()[:8]
    page = st.number_input(
        f"Page (of {pages:,})",
        min_value=1,
        max_value=pages,
        value=min(filters.page, pages),
        key=f"customers_page_{signature}",
    )
    if page != filters.page:
        filters = CustomerFilters(**{**filters.__dict__, "page": int(page)})
        result = customers_data.customer_page(filters)
        rows = result[0] if result else []
    _sync_url(to_query_params(filters))
    st.caption(f"{total:,} customers match · page {filters.page:,} of {pages:,}")
    if not rows:
        st.info(NO_MATCH_MESSAGE)
        return
    _table(rows)
    _open_form()


def _sync_url(wanted: dict[str, str]) -> None:
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def list_frame(rows: list[dict]) -> pd.DataFrame:
    """The shown page of customers, tier as a one-badge list."""
    frame = pd.DataFrame(rows)
    frame["detail"] = [f"?customer_id={int(c)}" for c in frame["customer_id"]]
    frame["risk_tier"] = [[t] if t else [] for t in frame["risk_tier"]]
    return frame[
        [
            "customer_id",
            "full_name",
            "email",
            "risk_tier",
            "risk_score",
            "risk_score_change_7d",
            "top_risk_component",
            "days_since_last_session",
            "sessions_30d",
            "inbound_calls_30d",
            "acquisition_channel",
            "scoring_profile",
            "detail",
        ]
    ]


def _table(rows: list[dict]) -> None:
    st.dataframe(
        view_cache.table("customers_list", rows, lambda: list_frame(rows)),
        hide_index=True,
        key="customers_table",
        column_config={
            "customer_id": st.column_config.NumberColumn("Customer", format="%d"),
            "full_name": st.column_config.TextColumn("Name"),
            "email": st.column_config.TextColumn("E-mail"),
            "risk_tier": TIER_BADGE,
            "risk_score": st.column_config.ProgressColumn(
                "Risk score", min_value=0, max_value=100, format="%.0f"
            ),
            "risk_score_change_7d": st.column_config.NumberColumn("Change (7 d)", format="%+.1f"),
            "top_risk_component": "Main driver",
            "days_since_last_session": "Days since last session",
            "sessions_30d": "Sessions (30 d)",
            "inbound_calls_30d": "Support calls (30 d)",
            "acquisition_channel": "Channel",
            "scoring_profile": "Segment",
            "detail": st.column_config.LinkColumn("Detail", display_text="Open"),
        },
    )


def _open_form() -> None:
    with st.form("open_customer"):
        cols = st.columns([1, 3])
        wanted = cols[0].number_input("Customer id", min_value=1, step=1, key="customers_open_id")
        if st.form_submit_button("Open customer"):
            st.query_params.from_dict({"customer_id": str(int(wanted))})
            st.rerun()


# ----------------------------------------------------------------------------------- detail


def _detail(customer_id: int) -> None:
    if st.button("Back to the list", key="customers_back"):
        st.query_params.clear()
        st.rerun()
    health = customers_data.customer_detail(customer_id)
    if health is None:
        st.title(f"Customer {customer_id}")
        st.warning(NOT_FOUND_MESSAGE.format(customer_id=customer_id))
        return
    st.title(f"Customer {customer_id}")
    name = health.get("full_name") or "(no name on file)"
    st.subheader(markdown_text(str(name)))
    if health.get("email"):
        st.caption(markdown_text(str(health["email"])))
    cols = st.columns(4)
    cols[0].metric(
        "Risk score",
        f"{float(health['risk_score']):.0f}",
        _change(health.get("risk_score_change_7d")),
        delta_color="inverse",
    )
    cols[1].metric("Tier", str(health["risk_tier"]))
    churn = customers_data.latest_churn(customer_id)
    probability = churn.get("churn_probability") if churn else None
    cols[2].metric(
        "Churn probability",
        "—" if probability is None else f"{float(probability):.0%}",
        help="Latest score in ml.churn_scores" if churn else "Not scored by the churn model yet",
    )
    if health.get("last_session_date") is None:
        # the mart counts from sign-up until a first completed session
        cols[3].metric(
            "Days since sign-up",
            _int(health.get("days_since_last_session")),
            help="No completed session yet: counted from the day the customer signed up.",
        )
    else:
        cols[3].metric("Days since last session", _int(health.get("days_since_last_session")))
    if health.get("risk_forced_reason"):
        st.caption(markdown_text(f"Tier raised: {health['risk_forced_reason']}"))

    left, right = st.columns(2)
    history = customers_data.score_history(customer_id)
    with left:
        if history:
            view_cache.chart("customer_history", history, lambda: score_history_chart(history))
        else:
            st.info("No score history yet: marts.customer_health_history fills in daily.")
    parts = customers_data.contributions(health)
    with right:
        if parts:
            view_cache.chart("customer_parts", parts, lambda: contributions_chart(parts))
        else:
            st.info("No component breakdown for this customer.")

    st.subheader("Why at risk")
    _churn(churn)
    st.subheader("Recent sessions")
    _sessions(customers_data.recent_sessions(customer_id))
    st.subheader("Recent support calls")
    _calls(customers_data.recent_support_calls(customer_id))
    left, right = st.columns(2)
    with left:
        st.subheader("Alerts")
        _alerts(customers_data.customer_alerts(customer_id))
    with right:
        st.subheader("Recommendations")
        _recommendations(customers_data.customer_recommendations(customer_id))


def _sessions(sessions: list[dict]) -> None:
    if not sessions:
        st.caption("No sessions on record for this customer.")
        return
    frame = pd.DataFrame(sessions)
    frame["scheduled_at"] = pd.to_datetime(frame["scheduled_at"], utc=True)
    st.dataframe(
        frame,
        hide_index=True,
        key="customer_sessions",
        column_config={
            "session_id": st.column_config.NumberColumn("Session", format="%d"),
            "scheduled_at": st.column_config.DatetimeColumn(
                "Scheduled (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "status": "Status",
            "rating": "Rating",
            "tutor_id": st.column_config.NumberColumn("Tutor", format="%d"),
            "subject_id": st.column_config.NumberColumn("Subject", format="%d"),
            "duration_minutes": "Minutes",
        },
    )


def _calls(calls: list[dict] | None) -> None:
    if calls is None:
        st.caption(NO_CALLS_VIEW)
        return
    if not calls:
        st.caption("No support calls on record for this customer.")
        return
    frame = pd.DataFrame(calls)
    frame["called_at"] = pd.to_datetime(frame["called_at"], utc=True)
    frame["reason_code"] = frame["reason_code"].map(
        lambda r: str(r).replace("_", " ") if r is not None else ""
    )
    frame["minutes"] = frame["duration_seconds"].map(
        lambda s: None if s is None or pd.isna(s) else round(float(s) / 60, 1)
    )
    st.dataframe(
        frame[["called_at", "reason_code", "channel", "minutes", "is_resolved", "call_id"]],
        hide_index=True,
        key="customer_calls",
        column_config={
            "called_at": st.column_config.DatetimeColumn("Called (UTC)", format="YYYY-MM-DD HH:mm"),
            "reason_code": st.column_config.TextColumn("Reason"),
            "channel": st.column_config.TextColumn("Channel"),
            "minutes": st.column_config.NumberColumn("Minutes", format="%.1f"),
            "is_resolved": st.column_config.CheckboxColumn("Resolved"),
            "call_id": st.column_config.NumberColumn("Call", format="%d"),
        },
    )


def _alerts(alerts: list[dict]) -> None:
    if not alerts:
        st.caption("No alerts about this customer.")
        return
    frame = pd.DataFrame(alerts)
    frame["last_seen_at"] = pd.to_datetime(frame["last_seen_at"], utc=True)
    frame["link"] = [f"/alerts?alert={int(i)}" for i in frame["id"]]
    st.dataframe(
        frame[["severity", "status", "title", "last_seen_at", "link"]],
        hide_index=True,
        key="customer_alerts",
        column_config={
            "severity": "Severity",
            "status": "Status",
            "title": st.column_config.TextColumn("Alert"),
            "last_seen_at": st.column_config.DatetimeColumn(
                "Last seen (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "link": st.column_config.LinkColumn("Open", display_text="Open"),
        },
    )


def _recommendations(recs: list[dict]) -> None:
    if not recs:
        st.caption("No recommendations for this customer.")
        return
    frame = pd.DataFrame(recs)
    frame["link"] = [f"/recommendations?rec={int(i)}" for i in frame["id"]]
    st.dataframe(
        frame[["status", "action", "reason", "priority", "link"]],
        hide_index=True,
        key="customer_recommendations",
        column_config={
            "status": "Status",
            "action": st.column_config.TextColumn("Suggested action"),
            "reason": st.column_config.TextColumn("Why"),
            "priority": st.column_config.NumberColumn("Priority", format="%.0f"),
            "link": st.column_config.LinkColumn("Open", display_text="Open"),
        },
    )


def _churn(churn: dict | None) -> None:
    if churn is None:
        st.caption("The churn model has not scored this customer yet.")
        return
    model = " ".join(str(churn[k]) for k in ("model_name", "model_version") if churn.get(k))
    scored = _utc_minute(churn.get("scored_at"))
    label = f"Churn model {model}" if model else "Churn model"
    st.caption(markdown_text(f"{label}, scored {scored} UTC"))
    factors = churn.get("top_factors")
    rows = factor_rows(factors) if isinstance(factors, list) else []
    if rows:
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            key="customer_factors",
            column_config={
                "factor": st.column_config.TextColumn("Risk factor"),
                "effect": st.column_config.TextColumn("Effect"),
                "intervention": st.column_config.TextColumn("Suggested intervention"),
            },
        )
    else:
        st.caption("No risk factors recorded for this score.")


def factor_rows(factors: list, limit: int = 3) -> list[dict[str, str]]:
    """The top factors in plain words: what it is, whether it raises or lowers the risk, and
    what to do. Scores carry those words (`reason`, `direction`, `action`, see ml.explain);
    older scores only a feature name and a SHAP value, shown as a readable name and its
    direction - never the raw numbers."""
    rows = []
    for factor in factors[:limit]:
        if not isinstance(factor, dict):
            rows.append({"factor": str(factor), "effect": "", "intervention": ""})
            continue
        direction = factor.get("direction") or _direction(factor)
        words = factor.get("reason") or factor.get("label") or _readable(factor)
        rows.append(
            {
                "factor": str(words),
                "effect": {"raises": "raises the risk", "lowers": "lowers the risk"}.get(
                    str(direction), ""
                ),
                "intervention": str(factor.get("action") or ("" if direction == "lowers" else "—")),
            }
        )
    return rows


def _direction(factor: dict) -> str:
    value = next(
        (
            factor[k]
            for k in ("shap", "contribution", "impact")
            if isinstance(factor.get(k), int | float)
        ),
        None,
    )
    if value is None:
        return ""
    return "raises" if value > 0 else "lowers"


def _readable(factor: dict) -> str:
    name = str(factor.get("feature") or factor.get("name") or "?")
    return name.replace("_", " ").capitalize()


def _utc_minute(value: object) -> str:
    """A cached timestamp (ISO text) as "YYYY-MM-DD HH:MM" in UTC."""
    stamp = parse_ts(value)
    if stamp is None:
        return "?"
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return f"{stamp.astimezone(UTC):%Y-%m-%d %H:%M}"


def _change(value: object) -> str | None:
    return None if value is None else f"{float(value):+.1f} in 7 days"  # type: ignore[arg-type]


def _int(value: object) -> str:
    return "—" if value is None else f"{int(value):,}"  # type: ignore[call-overload]


if __name__ == "__main__":  # run as a page script by `st.navigation` in app.py
    render()

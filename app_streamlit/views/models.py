"""Models & data: is the machinery healthy? Champions and their metrics (linked to MLflow), churn
drift and realized accuracy, forecast monitoring, data-quality results, freshness of every raw
table and mart, health of PostgreSQL, Redis, MLflow, Dagster and the alert sensors, and
notifications that could not be delivered.

Operators and admins only (viewers do not see it in the navigation and are refused here):
service internals and links into MLflow, which has no login of its own, are for the people who
run the stack.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import psycopg
import streamlit as st

from app_streamlit import live, models_data, session, view_cache
from app_streamlit.view_charts import monitoring_chart

STATUS_ICONS = {
    "ok": ":material/check_circle:",
    "warn": ":material/warning:",
    "down": ":material/cancel:",
}
WAREHOUSE_DOWN = "The warehouse is not reachable right now; this page retries on its own."
NO_CHAMPIONS = (
    "No champion model found in MLflow (or MLflow is down, see Health). Train one with "
    "`opsdash materialize` (churn and forecasting jobs), then refresh."
)


def render() -> None:
    session.require_page_role("operator")
    st.title("Models & data")
    live.section(_health, key="models_health")
    tabs = st.tabs(["Models", "Data quality", "Freshness", "Failed notifications"])
    with tabs[0]:
        _guarded(_models)
    with tabs[1]:
        _guarded(_quality)
    with tabs[2]:
        _guarded(_freshness)
    with tabs[3]:
        _guarded(_failed_deliveries)


def _guarded(section: object) -> None:
    try:
        section()  # type: ignore[operator]
    except psycopg.OperationalError:
        st.error(WAREHOUSE_DOWN)


# ---------------------------------------------------------------------------------- health


def _health() -> None:
    st.subheader("Health")
    checks, dagster = models_data.service_health()
    bad = [c for c in checks if c.status != "ok"]
    if bad:
        st.warning(
            "Needs attention: " + "; ".join(f"{c.service}: {c.detail}" for c in bad),
            icon=":material/warning:",
        )
    cols = st.columns(min(len(checks), 4))
    for i, check in enumerate(checks):
        with cols[i % len(cols)]:
            st.markdown(
                f"{STATUS_ICONS.get(check.status, '')} **{check.service}** — {check.status}"
            )
            st.caption(check.detail)
    left, right = st.columns(2)
    with left:
        st.markdown("**Last Dagster runs**")
        if dagster.runs:
            st.dataframe(
                pd.DataFrame(dagster.runs)[["job", "status", "started", "ended"]],
                hide_index=True,
                column_config=_time_columns("started", "ended"),
            )
        else:
            st.caption("No runs recorded.")
    with right:
        st.markdown("**Sensors (last tick)**")
        if dagster.sensors:
            st.dataframe(
                pd.DataFrame(dagster.sensors),
                hide_index=True,
                column_config=_time_columns("last_tick"),
            )
        else:
            st.caption("No sensor ticks recorded.")


def _time_columns(*names: str) -> dict:
    return {
        n: st.column_config.DatetimeColumn(
            f"{n.replace('_', ' ').capitalize()} (UTC)", format="YYYY-MM-DD HH:mm:ss"
        )
        for n in names
    }


# ---------------------------------------------------------------------------------- models


def _models() -> None:
    st.subheader("Champion models")
    with st.spinner("Asking the MLflow registry…"):
        champions = models_data.champions()
    if not champions:
        st.info(NO_CHAMPIONS)
    else:
        frame = pd.DataFrame(
            [
                {
                    "model": c["model"],
                    "version": c.get("version") or "none",
                    "registered_at": c.get("registered_at"),
                    "metrics": models_data.headline_metrics(c.get("metrics") or {}),
                    "link": c["link"],
                }
                for c in champions
            ]
        )
        st.dataframe(
            frame,
            hide_index=True,
            column_config={
                "model": "Model",
                "version": "Champion version",
                "registered_at": st.column_config.DatetimeColumn(
                    "Registered (UTC)", format="YYYY-MM-DD HH:mm"
                ),
                "metrics": "Metrics of its training run",
                "link": st.column_config.LinkColumn("MLflow", display_text="Open in MLflow"),
            },
        )
    st.subheader("Churn model: drift and realized accuracy")
    drift = models_data.churn_drift()
    accuracy = models_data.churn_accuracy()
    left, right = st.columns(2)
    with left:
        if drift:
            view_cache.chart(
                "models_drift",
                drift,
                lambda: monitoring_chart(
                    drift, "monitored_date", ["max_psi"], "Largest feature PSI per day"
                ),
            )
            drifted = models_data.drifted_features()
            if drifted:
                st.caption("Drifted features on the latest day (PSI above its threshold):")
                st.dataframe(pd.DataFrame(drifted), hide_index=True)
        else:
            st.info("No drift measured yet: the churn monitoring job writes ml.churn_drift daily.")
    with right:
        if accuracy:
            view_cache.chart(
                "models_accuracy",
                accuracy,
                lambda: monitoring_chart(
                    accuracy, "scored_date", ["roc_auc", "recall", "precision"], "Realized accuracy"
                ),
            )
        else:
            st.info(
                "No realized accuracy yet: it is measured once the outcome window of past "
                "scores has closed (ml.churn_accuracy)."
            )
    st.subheader("Demand forecasts: monitoring")
    forecast = models_data.forecast_monitoring()
    if forecast:
        view_cache.chart(
            "models_forecast",
            forecast,
            lambda: monitoring_chart(
                forecast, "monitored_date", ["mase", "coverage"], "Mean MASE and 95% band coverage"
            ),
        )
    else:
        st.info(
            "No forecast monitoring yet: ml.model_monitoring fills in once forecasts meet actuals."
        )


# --------------------------------------------------------------------------------- quality


def _quality() -> None:
    latest = models_data.quality_latest()
    if not latest:
        st.info("No data-quality run yet: the checks run with each ingestion and mart build.")
        return
    frame = pd.DataFrame(latest)
    failing = frame[~frame["success"].astype(bool)]
    st.metric("Checks failing now", f"{len(failing)} of {len(frame)}")
    st.dataframe(
        frame[
            [
                "asset_key",
                "check_name",
                "severity",
                "success",
                "failed",
                "expectations",
                "rows_checked",
                "checked_at",
            ]
        ],
        hide_index=True,
        column_config={
            "asset_key": "Asset",
            "check_name": "Check",
            "severity": "Severity",
            "success": st.column_config.CheckboxColumn("Passed"),
            "failed": "Failed expectations",
            "expectations": "Expectations",
            "rows_checked": "Rows checked",
            "checked_at": st.column_config.DatetimeColumn(
                "Checked (UTC)", format="YYYY-MM-DD HH:mm"
            ),
        },
    )
    failures = models_data.quality_failures()
    if failures:
        st.markdown("**Failed expectations, last 24 h**")
        st.dataframe(pd.DataFrame(failures), hide_index=True)


# ------------------------------------------------------------------------------- freshness


def _freshness() -> None:
    now = datetime.now(UTC)
    raw = models_data.raw_freshness() or []
    left, right = st.columns(2)
    with left:
        st.markdown("**Raw tables (last load)**")
        if raw:
            frame = pd.DataFrame(raw)
            frame["age"] = [_age(models_data.age_s(v, now)) for v in frame["loaded_at"]]
            st.dataframe(
                frame[["table_name", "age", "loaded_at", "watermark", "rows_loaded"]],
                hide_index=True,
                column_config={
                    "table_name": "Table",
                    "age": "Loaded",
                    **_time_columns("loaded_at", "watermark"),
                    "rows_loaded": st.column_config.NumberColumn("Rows loaded", format="%d"),
                },
            )
        else:
            st.info("No raw tables yet: run the migrations (`opsdash up`).")
    with right:
        st.markdown("**Marts (computed_at)**")
        marts = models_data.mart_freshness()
        if marts:
            frame = pd.DataFrame(marts)
            frame["age"] = [_age(models_data.age_s(v, now)) for v in frame["computed_at"]]
            st.dataframe(
                frame[["mart", "age", "computed_at"]],
                hide_index=True,
                column_config={"mart": "Mart", "age": "Computed", **_time_columns("computed_at")},
            )
        else:
            st.info("No marts yet: the first pipeline run builds them (`opsdash materialize`).")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"


# ------------------------------------------------------------------------ failed deliveries


def _failed_deliveries() -> None:
    rows = models_data.failed_deliveries()
    if not rows:
        st.success("Every notification was delivered (none failed or given up).")
        return
    st.warning(
        f"{len(rows)} notifications were not delivered. Fix the channel (SMTP / Slack settings), "
        "then re-queue them with `opsdash outbox requeue`."
    )
    frame = pd.DataFrame(rows)
    st.dataframe(
        frame[
            [
                "id",
                "channel",
                "kind",
                "severity",
                "subject",
                "status",
                "attempts",
                "last_error",
                "created_at",
                "given_up_at",
            ]
        ],
        hide_index=True,
        column_config={
            "id": st.column_config.NumberColumn("Id", format="%d"),
            "subject": st.column_config.TextColumn("Subject"),
            "last_error": st.column_config.TextColumn("Last error"),
            **_time_columns("created_at", "given_up_at"),
        },
    )


if __name__ == "__main__":  # run as a page script by `st.navigation` in app.py
    render()

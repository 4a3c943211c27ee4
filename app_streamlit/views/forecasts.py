"""Forecasts & supply: per subject, last week's demand and the 7-day forecast with its 95% band;
the subject x hour gap heatmap for the next 7 days; which model serves each subject and its
backtest MASE next to the seasonal naive's. `?subject_id=` picks the subject. Read-only.
"""

from __future__ import annotations

import pandas as pd
import psycopg
import streamlit as st

from app_streamlit import forecasts_data, session, view_cache
from app_streamlit.view_charts import forecast_chart, gap_heatmap
from app_streamlit.view_params import parse_id

EMPTY_MESSAGE = (
    "No supply/demand data yet: run the pipeline (`opsdash materialize`, or wait for the "
    "schedule) to build marts.supply_demand_hourly."
)
NO_FORECAST_MESSAGE = (
    "No forecast for this subject yet: the forecasting job writes ml.demand_forecasts "
    "(run the forecasting job or wait for its schedule)."
)
NO_GAPS_MESSAGE = "No gaps to show: marts.demand_supply_gaps_hourly has no forecast hours ahead."
NO_BACKTESTS_MESSAGE = "No backtests yet: they are written with each forecasting run."
WAREHOUSE_DOWN = "The warehouse is not reachable right now; reload the page in a minute."


def render() -> None:
    session.require_user()
    st.title("Forecasts & supply")
    try:
        with st.spinner("Loading forecasts…"):
            _page()
    except psycopg.OperationalError:
        st.error(WAREHOUSE_DOWN)


def _page() -> None:
    subjects = forecasts_data.subjects()
    if not subjects:
        st.info(EMPTY_MESSAGE)
        return
    names = {int(s["subject_id"]): str(s["subject_name"] or s["subject_id"]) for s in subjects}
    ids = list(names)
    wanted = parse_id(st.query_params.to_dict(), "subject_id")
    subject_id = st.selectbox(
        "Subject",
        ids,
        index=ids.index(wanted) if wanted in names else 0,
        key="forecasts_subject",
        format_func=names.__getitem__,
    )
    if st.query_params.get("subject_id") != str(subject_id):
        st.query_params["subject_id"] = str(subject_id)

    forecast = forecasts_data.forecast(subject_id)
    actuals = forecasts_data.actuals(subject_id)
    if forecast:
        view_cache.chart(
            "forecast",
            [view_cache.key_of(actuals), view_cache.key_of(forecast), names[subject_id]],
            lambda: forecast_chart(actuals, forecast, names[subject_id]),
        )
        served = forecast[0]
        note = " (fallback: seasonal mean)" if served.get("is_fallback") else ""
        st.caption(f"Model: {served['model']}{note} · shaded band: 95% interval · times in UTC")
    else:
        st.info(NO_FORECAST_MESSAGE)

    st.subheader("Demand/supply gap, next 7 days")
    gaps = forecasts_data.gaps()
    if gaps:
        view_cache.chart("forecast_gaps", gaps, lambda: gap_heatmap(gaps))
        st.caption("Orange: more sessions expected than tutor-hours available; blue: spare.")
    else:
        st.info(NO_GAPS_MESSAGE)

    st.subheader("Serving model per subject")
    backtests = forecasts_data.backtests()
    if not backtests:
        st.info(NO_BACKTESTS_MESSAGE)
        return

    def frame() -> pd.DataFrame:
        built = pd.DataFrame(backtests)
        built.insert(1, "subject", [names.get(int(s), str(s)) for s in built["subject_id"]])
        return built

    st.dataframe(
        view_cache.table("forecast_backtests", backtests, frame, tuple(names.items())),
        hide_index=True,
        key="forecasts_backtests",
        column_config={
            "subject_id": st.column_config.NumberColumn("Subject id", format="%d"),
            "subject": st.column_config.TextColumn("Subject"),
            "served_model": st.column_config.TextColumn("Serving model"),
            "mase": st.column_config.NumberColumn("Backtest MASE", format="%.3f"),
            "coverage": st.column_config.NumberColumn("95% coverage", format="percent"),
            "seasonal_naive_mase": st.column_config.NumberColumn(
                "Seasonal naive MASE", format="%.3f"
            ),
        },
    )
    st.caption("MASE below 1 beats the in-sample seasonal naive; lower is better.")


if __name__ == "__main__":  # run as a page script by `st.navigation` in app.py
    render()

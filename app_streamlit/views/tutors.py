"""Tutors: the performance table of marts.tutor_performance (30-day window), the coaching list
with the mart's reasons, and a detail view (`?tutor_id=`) with the daily trends from
marts.tutor_performance_daily. Filters live in the URL. Read-only for every role.
"""

from __future__ import annotations

import hashlib

import pandas as pd
import psycopg
import streamlit as st
from streamlit.elements.lib.column_types import ColumnConfig

from app_streamlit import session, tutors_data, view_cache
from app_streamlit.view_charts import success_score_chart, tutor_trend_chart
from app_streamlit.view_params import (
    TUTOR_SORTS,
    TutorFilters,
    page_count,
    parse_id,
    parse_tutor_filters,
    to_query_params,
)
from app_streamlit.view_text import markdown_text

EMPTY_MESSAGE = (
    "No tutor performance data yet: run the pipeline (`opsdash materialize`, or wait for the "
    "schedule) to build marts.tutor_performance."
)
NO_MATCH_MESSAGE = "No tutor matches these filters. Clear the search or untick the coaching filter."
NOT_FOUND_MESSAGE = "Tutor {tutor_id} is not in marts.tutor_performance (inactive or unknown)."
NO_COACHING_MESSAGE = "Nobody needs coaching right now: no tutor is flagged as underperforming."
WAREHOUSE_DOWN = "The warehouse is not reachable right now; reload the page in a minute."
SORT_LABELS = {
    "score_asc": "Success score, lowest first",
    "score_desc": "Success score, highest first",
    "no_shows": "No-show rate, highest first",
    "volume": "Completed sessions, most first",
    "tutor_id": "Tutor id",
}
RATE_COLUMNS = {
    "tutor_no_show_rate_30d": "No-show rate",
    "first_session_success_rate_30d": "First-session success",
    "rebooking_rate_30d": "Rebooking rate",
    "utilization_30d": "Utilization",
}


def render() -> None:
    session.require_user()
    params = st.query_params.to_dict()
    tutor_id = parse_id(params, "tutor_id")
    try:
        if tutor_id is not None:
            _detail(tutor_id)
        else:
            _list(parse_tutor_filters(params))
    except psycopg.OperationalError:
        st.error(WAREHOUSE_DOWN)


def _percent_columns() -> dict[str, ColumnConfig]:
    return {k: st.column_config.NumberColumn(v, format="percent") for k, v in RATE_COLUMNS.items()}


def _list(initial: TutorFilters) -> None:
    st.title("Tutors")
    cols = st.columns([3, 2, 1])
    q = cols[0].text_input("Search name, e-mail or id", value=initial.q, key="tutors_q")
    sort = cols[1].selectbox(
        "Sort by",
        TUTOR_SORTS,
        index=TUTOR_SORTS.index(initial.sort),
        key="tutors_sort",
        format_func=SORT_LABELS.__getitem__,
    )
    coaching = cols[2].checkbox("Coaching list only", value=initial.coaching, key="tutors_coaching")
    filters = TutorFilters(q=q.strip(), coaching=coaching, sort=sort, page=initial.page)
    if filters != TutorFilters(**{**initial.__dict__}):
        filters = TutorFilters(**{**filters.__dict__, "page": 1})
    result = tutors_data.tutor_page(filters)
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
        key=f"tutors_page_{signature}",
    )
    if page != filters.page:
        filters = TutorFilters(**{**filters.__dict__, "page": int(page)})
        result = tutors_data.tutor_page(filters)
        rows = result[0] if result else []
    wanted = to_query_params(filters)
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)

    st.subheader("Coaching list")
    _coaching()
    st.subheader("Performance, last 30 days")
    st.caption(f"{total:,} tutors match · page {filters.page:,} of {pages:,}")
    if not rows:
        st.info(NO_MATCH_MESSAGE)
        return
    st.dataframe(
        view_cache.table("tutors_list", rows, lambda: list_frame(rows)),
        hide_index=True,
        key="tutors_table",
        column_config={
            "tutor_id": st.column_config.NumberColumn("Tutor", format="%d"),
            "full_name": st.column_config.TextColumn("Name"),
            "success_score": st.column_config.ProgressColumn(
                "Success score", min_value=0, max_value=100, format="%.0f"
            ),
            "is_underperforming": st.column_config.CheckboxColumn("Needs coaching"),
            "sessions_completed_30d": "Completed (30 d)",
            "tutor_no_shows_30d": "No-shows (30 d)",
            "avg_rating_30d": st.column_config.NumberColumn("Avg rating", format="%.2f"),
            **_percent_columns(),
            "detail": st.column_config.LinkColumn("Detail", display_text="Open"),
        },
    )


def list_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["detail"] = [f"?tutor_id={int(t)}" for t in frame["tutor_id"]]
    return frame[
        [
            "tutor_id",
            "full_name",
            "success_score",
            "is_underperforming",
            "sessions_completed_30d",
            "tutor_no_shows_30d",
            "avg_rating_30d",
            *RATE_COLUMNS,
            "detail",
        ]
    ]


def _coaching() -> None:
    rows = tutors_data.coaching_list()
    if not rows:
        st.caption(NO_COACHING_MESSAGE)
        return
    st.dataframe(
        view_cache.table("tutors_coaching", rows, lambda: pd.DataFrame(rows)),
        hide_index=True,
        key="tutors_coaching_table",
        column_config={
            "tutor_id": st.column_config.NumberColumn("Tutor", format="%d"),
            "full_name": st.column_config.TextColumn("Name"),
            "success_score": st.column_config.NumberColumn("Success score", format="%.0f"),
            "underperforming_reason": st.column_config.TextColumn("Why"),
            "sessions_completed_30d": "Completed (30 d)",
            **_percent_columns(),
        },
    )


def _detail(tutor_id: int) -> None:
    if st.button("Back to the list", key="tutors_back"):
        st.query_params.clear()
        st.rerun()
    st.title(f"Tutor {tutor_id}")
    tutor = tutors_data.tutor_detail(tutor_id)
    if tutor is None:
        st.warning(NOT_FOUND_MESSAGE.format(tutor_id=tutor_id))
        return
    st.subheader(markdown_text(str(tutor.get("full_name") or "(no name on file)")))
    if tutor.get("is_underperforming"):
        reason = tutor.get("underperforming_reason") or "flagged by the mart"
        st.warning(markdown_text(f"Needs coaching: {reason}"))
    elif not tutor.get("is_judged"):
        st.caption("Too few sessions in the last 30 days to judge this tutor.")
    cols = st.columns(5)
    cols[0].metric("Success score", _num(tutor.get("success_score"), "{:.0f}"))
    cols[1].metric("Completed (30 d)", _num(tutor.get("sessions_completed_30d"), "{:,.0f}"))
    cols[2].metric("No-show rate", _num(tutor.get("tutor_no_show_rate_30d"), "{:.1%}"))
    cols[3].metric(
        "First-session success", _num(tutor.get("first_session_success_rate_30d"), "{:.1%}")
    )
    cols[4].metric("Avg rating", _num(tutor.get("avg_rating_30d"), "{:.2f}"))
    daily = tutors_data.tutor_daily(tutor_id)
    if not daily:
        st.info(
            "No daily history for this tutor yet: marts.tutor_performance_daily fills in daily."
        )
        return
    left, right = st.columns(2)
    view_cache.chart("tutor_score", daily, lambda: success_score_chart(daily), where=left)
    view_cache.chart("tutor_trend", daily, lambda: tutor_trend_chart(daily), where=right)


def _num(value: object, fmt: str) -> str:
    return "—" if value is None else fmt.format(float(value))  # type: ignore[arg-type]


if __name__ == "__main__":  # run as a page script by `st.navigation` in app.py
    render()

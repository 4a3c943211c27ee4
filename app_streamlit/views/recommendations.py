"""Recommendations: what the team should do next, most valuable first, and whether doing it
helped. Operators and admins accept, dismiss or snooze one with a comment; viewers read.

Reads go through the versioned query cache (`app_streamlit.recommendations_data`), so a rerun
costs a cache lookup. Actions go through `alerting.recommendation_actions`, which checks the
operator role on the server, writes the event and audit rows in one transaction and publishes
the live event after the commit; the page then invalidates the recommendations domain. The list filters (status, entity type) live in the URL; `?rec=<id>` opens one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
import streamlit as st

from alerting import recommendation_actions as recs
from app_streamlit import data, exports, live, session, view_cache
from app_streamlit import recommendations_data as recs_data
from app_streamlit.view_charts import effectiveness_chart
from app_streamlit.view_text import markdown_text
from opsdash_core import accounts

ENTITY_TYPES = ("", "customer", "tutor", "subject")
SNOOZE_DAYS = (1, 3, 7, 14)
READ_ONLY = "Read-only: your role cannot act on recommendations."
REFUSED = "Refused: your role ({role}) cannot act on recommendations."
WAREHOUSE_DOWN = "The warehouse is not reachable right now; reload the page in a minute."
EMPTY = (
    "No {status} recommendation. The pipeline creates them from at-risk customers, tutors who "
    "need coaching and supply gaps; check the recommendation job on the Models & data page if "
    "this stays empty."
)


def _first(params: dict[str, Any], name: str) -> str:
    value = params.get(name, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).strip()


def render() -> None:
    user = session.require_user()
    params = st.query_params.to_dict()
    st.title("Recommendations")
    try:
        rec_text = _first(params, "rec")
        if rec_text.isdigit() and 0 < int(rec_text) < 2**63:
            _detail(int(rec_text), user)
        else:
            _list(params, user)
    except psycopg.OperationalError:
        st.error(WAREHOUSE_DOWN)


def _list(params: dict[str, Any], user: accounts.User) -> None:
    status_param = _first(params, "status")
    entity_param = _first(params, "entity_type")
    cols = st.columns([1, 1, 3])
    status = cols[0].selectbox(
        "Status",
        recs.STATUSES,
        index=recs.STATUSES.index(status_param) if status_param in recs.STATUSES else 0,
        key="recs_status",
    )
    entity_type = cols[1].selectbox(
        "For",
        ENTITY_TYPES,
        index=ENTITY_TYPES.index(entity_param) if entity_param in ENTITY_TYPES else 0,
        key="recs_entity_type",
        format_func=lambda v: v or "anything",
    )
    wanted = {
        k: v
        for k, v in {"status": status, "entity_type": entity_type}.items()
        if v and v != "active"
    }
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)

    def table() -> None:
        rows = recs_data.list_recommendations(
            status=status, entity_type=entity_type or None, limit=200
        )
        _table(rows, status, user)

    live.section(table, key="recs_list")
    if accounts.has_role(user, "operator") and status in recs.OPEN_STATUSES:
        _act_form()
    elif not accounts.has_role(user, "operator"):
        st.caption(READ_ONLY)
    _effectiveness()


def _table(rows: list[dict[str, Any]], status: str, user: accounts.User) -> None:
    if not rows:
        st.info(EMPTY.format(status=status))
        return
    table, max_priority, export_rows = view_cache.memo(
        "recs_table", rows, lambda: recommendations_table(rows)
    )
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "id": st.column_config.NumberColumn("Id", format="%d"),
            "priority": st.column_config.ProgressColumn(
                "Priority",
                min_value=0,
                max_value=max(100.0, max_priority),
                format="%.0f",
            ),
            "entity": st.column_config.TextColumn("For"),
            "rec_type": "Type",
            "action": st.column_config.TextColumn("Suggested action"),
            "reason": st.column_config.TextColumn("Why"),
            "status": "Status",
            "created_at": st.column_config.DatetimeColumn(
                "Created (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "open": st.column_config.LinkColumn("History", display_text="Open"),
        },
    )
    exports.download_button("recommendations", EXPORT_COLUMNS, export_rows, status=status)


COLUMNS = [
    "id",
    "priority",
    "entity",
    "rec_type",
    "action",
    "reason",
    "status",
    "created_at",
    "open",
]
EXPORT_COLUMNS = COLUMNS[:-1]


def recommendations_table(rows: list[dict[str, Any]]) -> tuple[Any, float, list[list[Any]]]:
    """The shown table (Arrow), its highest priority and the CSV export rows; built once per
    distinct list."""
    frame = pd.DataFrame(rows)
    frame["entity"] = [
        f"{t} {int(i)}" for t, i in zip(frame["entity_type"], frame["entity_id"], strict=True)
    ]
    frame["open"] = [f"?rec={int(i)}" for i in frame["id"]]
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    export_rows = [
        [str(r[c]) if c == "created_at" else r[c] for c in EXPORT_COLUMNS]
        for r in frame[EXPORT_COLUMNS].to_dict("records")
    ]
    table = view_cache.arrow_table(frame[COLUMNS])
    return table, float(frame["priority"].max()), export_rows


def _act_form() -> None:
    with st.form("act_on_recommendation"):
        st.markdown("**Act on a recommendation**")
        cols = st.columns([1, 1, 1, 3])
        rec_id = cols[0].number_input("Id", min_value=1, step=1, key="rec_act_id")
        action = cols[1].selectbox("Action", ["accept", "dismiss", "snooze"], key="rec_act_action")
        days = cols[2].selectbox(
            "Snooze for", SNOOZE_DAYS, key="rec_act_days", format_func=lambda d: f"{d} days"
        )
        comment = cols[3].text_input("Comment", key="rec_act_comment", max_chars=1000)
        submitted = st.form_submit_button("Apply")
    if submitted and perform(str(action), int(rec_id), comment, days=int(days)):
        st.rerun()


def perform(action: str, rec_id: int, comment: str | None, *, days: int = 1) -> bool:
    """Run one action as the current user (the library re-checks the role); True if done."""
    user = session.current_user()
    if user is None:
        st.error("Your session has ended; log in again.")
        return False
    try:
        with session.warehouse_conn() as conn:
            if action == "accept":
                recs.accept(conn, rec_id, user, comment)
            elif action == "dismiss":
                recs.dismiss(conn, rec_id, user, comment)
            else:
                until = datetime.now(UTC) + timedelta(days=days)
                recs.snooze(conn, rec_id, user, until, comment)
    except accounts.PermissionDeniedError:
        st.error(REFUSED.format(role=user.role))
        return False
    except recs.RecommendationError as exc:
        st.error(str(exc))
        return False
    finally:
        data.invalidate(recs_data.DOMAIN)
    st.toast(f"Recommendation {rec_id}: {action} done", icon=":material/check:")
    return True


def _detail(rec_id: int, user: accounts.User) -> None:
    if st.button("Back to the list", key="recs_back", icon=":material/arrow_back:"):
        st.query_params.clear()
        st.rerun()
    rec = recs_data.get_recommendation(rec_id)
    if rec is None:
        st.warning(f"Recommendation {rec_id} does not exist.")
        return
    history = recs_data.history(rec_id)
    st.subheader(markdown_text(f"{rec['action']} — {rec['entity_type']} {rec['entity_id']}"))
    st.caption(
        markdown_text(f"{rec['reason']} · status {rec['status']} · priority {rec['priority']:.0f}")
    )
    if rec.get("comment"):
        st.caption(markdown_text(f"Comment: {rec['comment']}"))
    if accounts.has_role(user, "operator") and rec["status"] in recs.OPEN_STATUSES:
        with st.form("act_on_this"):
            comment = st.text_input("Comment", key="rec_detail_comment", max_chars=1000)
            cols = st.columns([1, 1, 1, 4])
            accept = cols[0].form_submit_button("Accept", type="primary")
            dismiss = cols[1].form_submit_button("Dismiss")
            snooze = cols[2].form_submit_button("Snooze 7 days")
        action = "accept" if accept else "dismiss" if dismiss else "snooze" if snooze else None
        if action and perform(action, rec_id, comment, days=7):
            st.rerun()
    elif not accounts.has_role(user, "operator"):
        st.caption(READ_ONLY)
    st.markdown("**History**")
    if history:
        frame = pd.DataFrame(history)
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
        st.dataframe(
            frame[["at", "from_status", "to_status", "actor", "comment"]],
            hide_index=True,
            column_config={
                "at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm"),
                "actor": st.column_config.TextColumn("By"),
                "comment": st.column_config.TextColumn("Comment"),
            },
        )
    else:
        st.caption("No events yet.")


def _effectiveness() -> None:
    st.subheader("Did it help?")
    rows = recs_data.effectiveness()
    if not rows:
        st.info(
            "No effectiveness data yet: marts.recommendation_effectiveness counts, per week, how "
            "many customers booked again within 14 days of an accepted or dismissed "
            "recommendation. It fills in two weeks after the first decisions."
        )
        return
    view_cache.chart("recs_effectiveness", rows, lambda: effectiveness_chart(rows))


if __name__ == "__main__":  # run as a page script by `st.navigation` in app.py
    render()

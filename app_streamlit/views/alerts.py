"""Alerts: every alert grouped by rule, filtered by status, severity, rule and entity (all in the
URL), and one alert's page (`?alert=<id>`, the link in alert e-mails) with its event history
and the actions: acknowledge, resolve, dismiss (each with a confirm step and a comment) and
silence (an end time and a comment).

Reads go through the versioned query cache (`app_streamlit.alerts_data`, the SQL of
`alerting.operations`), so a rerun costs a cache lookup; writes go through `alerting.operations`,
the same functions the CLI and the engine use, so the operator-role check, the event row and the
audit row cannot be skipped here: a viewer sees no action controls, and if a request still
reaches an action (a role changed since the page was drawn) the library refuses it on the
server. After an action the page invalidates the alerts domain of the cache.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pandas as pd
import psycopg
import streamlit as st

from alerting import operations as ops
from app_streamlit import alerts_data, data, exports, live, session, view_cache
from app_streamlit.view_text import markdown_text
from opsdash_core import accounts

STATUS_CHOICES = ("live", "open", "acknowledged", "resolved", "dismissed", "all")
SEVERITY_ICONS = {
    "critical": ":material/error:",
    "warning": ":material/warning:",
    "info": ":material/info:",
}
ACTIONS = {
    "acknowledge": ("Acknowledge", ("open",)),
    "resolve": ("Resolve", ops.LIVE),
    "dismiss": ("Dismiss", ops.LIVE),
}
PENDING = "alerts_pending_action"
READ_ONLY = "Read-only: your role cannot change alerts. Ask an operator to act on this one."
REFUSED = "Refused: your role ({role}) cannot change alerts."
WAREHOUSE_DOWN = "The warehouse is not reachable right now; reload the page in a minute."
LIST_LIMIT = 500


# ------------------------------------------------------------------------------ URL params


def _first(params: dict[str, Any], name: str) -> str:
    value = params.get(name, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).strip()


def parse_filters(params: dict[str, Any]) -> dict[str, str]:
    """Filters from the URL; unknown values fall back to "any" (a URL is user input)."""
    status = _first(params, "status")
    severity = _first(params, "severity")
    return {
        "status": status if status in STATUS_CHOICES else "live",
        "severity": severity if severity in ops.SEVERITIES else "",
        "rule": _first(params, "rule")[:100],
        "entity": _first(params, "entity")[:100],
    }


def parse_entity(text: str) -> tuple[str | None, int | None]:
    """`customer:42` -> ("customer", 42); `customer` -> ("customer", None); `42` -> (None, 42)."""
    kind, _, ident = text.partition(":")
    if not ident and kind.isdigit():
        kind, ident = "", kind
    entity_id = int(ident) if ident.isdigit() and len(ident) < 19 else None
    return (kind.strip() or None), entity_id


def _alert_id(params: dict[str, Any]) -> int | None:
    text = _first(params, "alert")
    return int(text) if text.isdigit() and 0 < int(text) < 2**63 else None


# ----------------------------------------------------------------------------------- page


def render() -> None:
    user = session.require_user()
    params = st.query_params.to_dict()
    alert_id = _alert_id(params)
    try:
        if alert_id is not None:
            _detail(alert_id, user)
        else:
            _list(parse_filters(params), user)
    except psycopg.OperationalError:
        st.error(WAREHOUSE_DOWN)


def _list(initial: dict[str, str], user: accounts.User) -> None:
    st.title("Alerts")
    rules = alerts_data.rules()
    cols = st.columns([1, 1, 2, 2])
    status = cols[0].selectbox(
        "Status", STATUS_CHOICES, index=STATUS_CHOICES.index(initial["status"]), key="alerts_status"
    )
    severities = ("", *ops.SEVERITIES)
    severity = cols[1].selectbox(
        "Severity",
        severities,
        index=severities.index(initial["severity"]),
        key="alerts_severity",
        format_func=lambda v: v or "any",
    )
    rule_options = ["", *rules]
    if initial["rule"] and initial["rule"] not in rule_options:
        rule_options.append(initial["rule"])
    rule = cols[2].selectbox(
        "Rule",
        rule_options,
        index=rule_options.index(initial["rule"]),
        key="alerts_rule",
        format_func=lambda v: v or "any",
    )
    entity = cols[3].text_input(
        "Entity (e.g. customer:42)", value=initial["entity"], key="alerts_entity", max_chars=100
    )
    filters = {"status": status, "severity": severity, "rule": rule, "entity": entity.strip()}
    wanted = {k: v for k, v in filters.items() if v and not (k == "status" and v == "live")}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)

    def table() -> None:
        _grouped_alerts(filters)

    live.section(table, key="alerts_list")
    _open_form()
    _silences(user)


def _grouped_alerts(filters: dict[str, str]) -> None:
    entity_type, entity_id = parse_entity(filters["entity"])
    alerts = alerts_data.list_alerts(
        status=None if filters["status"] == "all" else filters["status"],
        severity=filters["severity"] or None,
        rule=filters["rule"] or None,
        entity_type=entity_type,
        entity_id=entity_id,
        limit=LIST_LIMIT,
    )
    if not alerts:
        st.info("No alert matches these filters. Choose status 'all' or clear the filters.")
        return
    st.caption(
        f"{len(alerts):,} alerts{' (the first ' + str(LIST_LIMIT) + ')' if len(alerts) == LIST_LIMIT else ''}"
        " · newest activity first within each rule"
    )
    groups, export_rows = view_cache.memo("alerts_groups", alerts, lambda: alert_groups(alerts))
    for label, icon, part in groups:
        with st.expander(label, expanded=len(groups) <= 3, icon=icon):
            st.dataframe(part, hide_index=True, column_config=ALERT_COLUMNS)
    exports.download_button("alerts", EXPORT_COLUMNS, export_rows, **filters)


SHOWN_COLUMNS = [
    "id",
    "severity",
    "status",
    "title",
    "entity",
    "occurrences",
    "last_seen_at",
    "acknowledged_by",
    "open",
]
EXPORT_COLUMNS = [
    "id",
    "rule",
    "severity",
    "status",
    "title",
    "entity",
    "occurrences",
    "last_seen_at",
]
ALERT_COLUMNS: dict[str, Any] = {
    "id": st.column_config.NumberColumn("Alert", format="%d"),
    "severity": "Severity",
    "status": "Status",
    "title": st.column_config.TextColumn("Title"),
    "entity": st.column_config.TextColumn("Entity"),
    "occurrences": "Seen",
    "last_seen_at": st.column_config.DatetimeColumn("Last seen (UTC)", format="YYYY-MM-DD HH:mm"),
    "acknowledged_by": st.column_config.TextColumn("Acknowledged by"),
    "open": st.column_config.LinkColumn("Detail", display_text="Open"),
}


def alert_groups(
    alerts: list[dict[str, Any]],
) -> tuple[list[tuple[str, str, Any]], list[list[Any]]]:
    """The alerts grouped by rule (in order of first appearance): per rule its expander label,
    icon and Arrow table; and the CSV export rows. Built once per distinct list."""
    frame = pd.DataFrame(alerts)
    frame["last_seen_at"] = pd.to_datetime(frame["last_seen_at"], utc=True)
    frame["open"] = [f"?alert={int(i)}" for i in frame["id"]]
    frame["entity"] = [
        f"{t}:{int(i)}" if pd.notna(i) else str(t)
        for t, i in zip(frame["entity_type"], frame["entity_id"], strict=True)
    ]
    groups = []
    for rule, part in frame.groupby("rule", sort=False):
        counts = part["status"].value_counts().to_dict()
        severities = set(part["severity"])
        worst = next((s for s in ("critical", "warning", "info") if s in severities), "info")
        label = (
            f"{rule} — {len(part)} alerts ("
            + ", ".join(f"{n} {s}" for s, n in counts.items())
            + ")"
        )
        groups.append((label, SEVERITY_ICONS[worst], view_cache.arrow_table(part[SHOWN_COLUMNS])))
    export_rows = [
        [row[c] if c != "last_seen_at" else str(row[c]) for c in EXPORT_COLUMNS]
        for row in frame[EXPORT_COLUMNS].to_dict("records")
    ]
    return groups, export_rows


def _open_form() -> None:
    with st.form("open_alert"):
        wanted = st.number_input("Alert id", min_value=1, step=1, key="alerts_open_id")
        if st.form_submit_button("Open alert"):
            st.query_params.from_dict({"alert": str(int(wanted))})
            st.rerun()


# --------------------------------------------------------------------------------- detail


def _detail(alert_id: int, user: accounts.User) -> None:
    if st.button("Back to all alerts", key="alerts_back", icon=":material/arrow_back:"):
        st.query_params.clear()
        st.session_state.pop(PENDING, None)
        st.rerun()
    alert = alerts_data.get_alert(alert_id)
    history = alerts_data.alert_events(alert_id) if alert else []
    st.title(f"Alert {alert_id}")
    if alert is None:
        st.warning(f"Alert {alert_id} does not exist (wrong link, or it was purged).")
        return
    icon = SEVERITY_ICONS.get(str(alert["severity"]), "")
    st.subheader(f"{icon} {markdown_text(str(alert['title']))}")
    cols = st.columns(4)
    cols[0].metric("Status", str(alert["status"]))
    cols[1].metric("Severity", str(alert["severity"]))
    cols[2].metric("Seen", f"{int(alert.get('occurrences') or 1):,} times")
    cols[3].metric("Rule", str(alert["rule"]))
    entity = f"{alert['entity_type']} {alert['entity_id'] or ''}".strip()
    if alert["entity_type"] == "customer" and alert["entity_id"]:
        st.markdown(
            f"Entity: [{markdown_text(entity)}](/customers?customer_id={int(alert['entity_id'])})"
        )
    elif alert["entity_type"] == "tutor" and alert["entity_id"]:
        st.markdown(
            f"Entity: [{markdown_text(entity)}](/tutors?tutor_id={int(alert['entity_id'])})"
        )
    else:
        st.caption(markdown_text(f"Entity: {entity}"))
    times = [
        f"first seen {_ts(alert.get('first_seen_at'))}",
        f"last seen {_ts(alert.get('last_seen_at'))}",
    ]
    if alert.get("acknowledged_by"):
        times.append(
            f"acknowledged by {alert['acknowledged_by']} {_ts(alert.get('acknowledged_at'))}"
        )
    if alert.get("suppressed_by"):
        times.append(f"notifications suppressed by {alert['suppressed_by']}")
    st.caption(markdown_text(" · ".join(times)))
    if alert.get("details"):
        with st.expander("Details"):
            st.json(alert["details"], expanded=True)

    if accounts.has_role(user, "operator"):
        _actions(alert)
    else:
        st.info(READ_ONLY, icon=":material/lock:")

    st.subheader("History")
    if history:
        frame = pd.DataFrame(history)
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
        st.dataframe(
            frame[["at", "kind", "from_status", "to_status", "actor", "actor_type", "note"]],
            hide_index=True,
            column_config={
                "at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm:ss"),
                "kind": "Event",
                "from_status": "From",
                "to_status": "To",
                "actor": st.column_config.TextColumn("By"),
                "actor_type": "Actor type",
                "note": st.column_config.TextColumn("Comment"),
            },
        )
    else:
        st.caption("No events recorded for this alert.")


def _ts(value: object) -> str:
    if isinstance(value, datetime):
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return "—"


def _actions(alert: dict[str, Any]) -> None:
    alert_id = int(alert["id"])
    status = str(alert["status"])
    possible = [name for name, (_, allowed) in ACTIONS.items() if status in allowed]
    pending = st.session_state.get(PENDING)
    if pending and pending[1] != alert_id:
        pending = None
    if pending is None:
        if possible:
            cols = st.columns(len(possible) + 3)
            for col, name in zip(cols, possible, strict=False):
                if col.button(ACTIONS[name][0], key=f"alert_action_{name}"):
                    st.session_state[PENDING] = (name, alert_id)
                    st.rerun()
        else:
            st.caption(f"This alert is {status}: it cannot change any more.")
    else:
        _confirm(pending[0], alert_id)
    _silence_form(alert)


def _confirm(action: str, alert_id: int) -> None:
    label = ACTIONS[action][0]
    with st.form(f"confirm_{action}"):
        st.markdown(f"**{label} alert {alert_id}?**")
        comment = st.text_area(
            "Comment" + (" (required: say why)" if action == "dismiss" else " (optional)"),
            key=f"alert_comment_{action}",
            max_chars=1000,
        )
        cols = st.columns([1, 1, 6])
        confirmed = cols[0].form_submit_button(f"Confirm {label.lower()}", type="primary")
        cancelled = cols[1].form_submit_button("Cancel")
    if cancelled:
        st.session_state.pop(PENDING, None)
        st.rerun()
    if confirmed and perform(action, alert_id, comment.strip() or None):
        st.session_state.pop(PENDING, None)
        st.rerun()


def perform(action: str, alert_id: int, comment: str | None) -> bool:
    """Run one action as the current user; the library checks the role, writes the event and
    the audit row. Shows why it was refused; True when it happened."""
    user = session.current_user()
    if user is None:
        st.error("Your session has ended; log in again.")
        return False
    fn = {"acknowledge": ops.acknowledge, "resolve": ops.resolve, "dismiss": ops.dismiss}[action]
    try:
        with session.warehouse_conn() as conn:
            fn(conn, alert_id, user, comment)  # type: ignore[operator]
    except accounts.PermissionDeniedError:
        st.error(REFUSED.format(role=user.role))
        return False
    except ops.AlertStateError as exc:
        st.error(str(exc))
        return False
    finally:
        data.invalidate(alerts_data.DOMAIN)  # even a refused one: the state may have moved
    st.toast(f"Alert {alert_id}: {ACTIONS[action][0].lower()}d", icon=":material/check:")
    return True


def _silence_form(alert: dict[str, Any]) -> None:
    with (
        st.expander("Silence similar alerts", icon=":material/notifications_off:"),
        st.form("silence"),
    ):
        st.caption("Silenced alerts are still recorded, just not notified, until the end time.")
        by_rule = st.checkbox(f"Rule {alert['rule']}", value=True, key="silence_by_rule")
        has_entity = alert.get("entity_id") is not None
        by_entity = st.checkbox(
            f"Entity {alert['entity_type']} {alert.get('entity_id') or ''}",
            value=has_entity,
            key="silence_by_entity",
        )
        tomorrow = datetime.now(UTC) + timedelta(hours=4)
        cols = st.columns(2)
        day = cols[0].date_input("Ends on (UTC)", value=tomorrow.date(), key="silence_day")
        at = cols[1].time_input(
            "at (UTC)", value=time(tomorrow.hour, 0), key="silence_time", step=900
        )
        comment = st.text_area("Comment (required)", key="silence_comment", max_chars=1000)
        submitted = st.form_submit_button("Create silence")
    if not submitted:
        return
    ends_at = datetime.combine(day, at, tzinfo=UTC)
    user = session.current_user()
    try:
        with session.warehouse_conn() as conn:
            silence_id = ops.create_silence(
                conn,
                user,  # type: ignore[arg-type]
                rule=str(alert["rule"]) if by_rule else None,
                entity_type=str(alert["entity_type"]) if by_entity else None,
                entity_id=int(alert["entity_id"]) if by_entity and has_entity else None,
                ends_at=ends_at,
                comment=comment.strip(),
            )
    except accounts.PermissionDeniedError:
        st.error(REFUSED.format(role=user.role if user else "none"))
        return
    except ops.AlertStateError as exc:
        st.error(str(exc))
        return
    data.invalidate(alerts_data.DOMAIN)
    st.success(f"Silence {silence_id} created until {ends_at:%Y-%m-%d %H:%M} UTC.")


# ------------------------------------------------------------------------------- silences


def _silences(user: accounts.User) -> None:
    st.subheader("Active silences")
    silences = alerts_data.silences()
    if not silences:
        st.caption("No active silence: every alert is notified.")
        return
    frame = pd.DataFrame(silences)
    st.dataframe(
        frame[
            [
                "id",
                "rule",
                "entity_type",
                "entity_id",
                "severity",
                "created_by",
                "comment",
                "ends_at",
            ]
        ],
        hide_index=True,
        column_config={
            "id": st.column_config.NumberColumn("Silence", format="%d"),
            "comment": st.column_config.TextColumn("Comment"),
            "created_by": st.column_config.TextColumn("By"),
            "ends_at": st.column_config.DatetimeColumn("Ends (UTC)", format="YYYY-MM-DD HH:mm"),
        },
    )
    if not accounts.has_role(user, "operator"):
        return
    with st.form("expire_silence"):
        cols = st.columns([1, 3])
        silence_id = cols[0].selectbox("Silence", [int(s["id"]) for s in silences], key="expire_id")
        if st.form_submit_button("End this silence now"):
            current = session.current_user()
            try:
                with session.warehouse_conn() as conn:
                    ops.expire_silence(conn, int(silence_id), current)  # type: ignore[arg-type]
            except accounts.PermissionDeniedError:
                st.error(REFUSED.format(role=current.role if current else "none"))
                return
            except ops.AlertStateError as exc:
                st.error(str(exc))
                return
            data.invalidate(alerts_data.DOMAIN)
            st.rerun()


if __name__ == "__main__":  # run as a page script by `st.navigation` in app.py
    render()

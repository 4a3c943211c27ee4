"""What people (and the engine) do to alerts: acknowledge, resolve, dismiss, silence, list.

One function per operation, shared by the app's Alerts page, the `opsdash alerts` CLI and the
engine, so a role check or an audit row cannot be forgotten by one of them. User actions need
the operator role (admins pass too) and raise `PermissionDeniedError` for viewers; the engine
acts as the pseudo-actors `SYSTEM` (rule evaluation) or `AUTOMATION` (timers). Every change
writes `app.alert_events`; user actions also write `app.audit_log`.

The operations commit their own transaction (one user action = one commit) and publish
`alert_updated` on the live-event stream after the commit, so a reader reacting to the event
finds the row. Lifecycle: open -> acknowledged -> resolved, or dismissed from either live state;
resolved and dismissed are final (a new occurrence is a new alert).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from opsdash_core.accounts import PermissionDeniedError, User, audit, require_role

LIVE = ("open", "acknowledged")
STATUSES = ("open", "acknowledged", "resolved", "dismissed")
SEVERITIES = ("info", "warning", "critical")
ActorType = Literal["user", "system", "automation"]


@dataclass(frozen=True)
class EngineActor:
    """The engine acting on its own: `system` evaluates rules, `automation` runs timers."""

    name: str
    actor_type: ActorType


SYSTEM = EngineActor("system", "system")
AUTOMATION = EngineActor("automation", "automation")
Actor = User | EngineActor


VERBS = {"acknowledged": "acknowledging", "resolved": "resolving", "dismissed": "dismissing"}


class AlertStateError(ValueError):
    """The alert does not exist or is not in a state the operation applies to (safe to show)."""


def _actor(actor: Actor) -> tuple[str, ActorType]:
    """Name and type of whoever acts; users need the operator role for any alert change."""
    if isinstance(actor, EngineActor):
        if actor not in (SYSTEM, AUTOMATION):
            raise PermissionDeniedError(f"Unknown engine actor {actor.name!r}.")
        return actor.name, actor.actor_type
    if not isinstance(actor, User):
        raise PermissionDeniedError("Alert changes need a signed-in user.")
    require_role(actor, "operator")
    return actor.username, "user"


# --- events --------------------------------------------------------------------------------

INSERT_EVENT_SQL = """
insert into app.alert_events (alert_id, from_status, to_status, actor, actor_type, kind, note, at)
values (%(alert_id)s, %(from_status)s, %(to_status)s, %(actor)s, %(actor_type)s, %(kind)s,
        %(note)s, coalesce(%(at)s, now()))
"""

EVENT_COLUMNS = "id, rule, severity, status, entity_type, entity_id, title"


def record_event(
    conn: psycopg.Connection,
    alert_id: int,
    *,
    actor: Actor,
    kind: str,
    to_status: str,
    from_status: str | None = None,
    note: str | None = None,
    at: datetime | None = None,
) -> None:
    """One row of an alert's history (the caller has checked the actor)."""
    name, actor_type = _actor(actor)
    conn.execute(
        INSERT_EVENT_SQL,
        {
            "alert_id": alert_id,
            "from_status": from_status,
            "to_status": to_status,
            "actor": name,
            "actor_type": actor_type,
            "kind": kind,
            "note": note,
            "at": at,
        },
    )


def event_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    """The live-event payload of an alert (what the app needs to show a toast or refresh)."""
    return {key: row.get(key) for key in EVENT_COLUMNS.split(", ")}


def publish_alert_events(
    created: Iterable[Mapping[str, Any]], updated: Iterable[Mapping[str, Any]]
) -> None:
    """Publish after the commit; best effort (the rows in PostgreSQL are the truth)."""
    from opsdash_core.events import publish

    for row in created:
        publish("alert_created", event_payload(row))
    for row in updated:
        publish("alert_updated", event_payload(row))


# --- transitions ---------------------------------------------------------------------------

LOCK_ALERT_SQL = f"select {EVENT_COLUMNS} from app.alerts where id = %(id)s for update"

ACK_SQL = f"""
update app.alerts
set status = 'acknowledged', acknowledged_by = %(actor)s, acknowledged_at = coalesce(%(at)s, now()),
    ack_comment = %(comment)s, updated_at = coalesce(%(at)s, now())
where id = %(id)s
returning {EVENT_COLUMNS}
"""

CLOSE_SQL = f"""
update app.alerts
set status = %(status)s, closed_by = %(actor)s, updated_at = coalesce(%(at)s, now()),
    resolved_at = case when %(status)s = 'resolved' then coalesce(%(at)s, now()) end
where id = %(id)s
returning {EVENT_COLUMNS}
"""


def _locked(conn: psycopg.Connection, alert_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(LOCK_ALERT_SQL, {"id": alert_id})
        row = cur.fetchone()
    if row is None:
        raise AlertStateError(f"Alert {alert_id} does not exist.")
    return row


def _change(
    conn: psycopg.Connection,
    alert_id: int,
    actor: Actor,
    to_status: str,
    comment: str | None,
    allowed_from: tuple[str, ...],
    at: datetime | None = None,
) -> dict[str, Any]:
    name, actor_type = _actor(actor)
    try:
        current = _locked(conn, alert_id)
        if current["status"] not in allowed_from:
            raise AlertStateError(
                f"Alert {alert_id} is {current['status']}; {VERBS[to_status]} needs it "
                f"{' or '.join(allowed_from)}."
            )
        params = {"id": alert_id, "actor": name, "comment": comment, "at": at, "status": to_status}
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(ACK_SQL if to_status == "acknowledged" else CLOSE_SQL, params)
            row = cur.fetchone()
        assert row is not None  # locked above
        record_event(
            conn,
            alert_id,
            actor=actor,
            kind="status",
            from_status=current["status"],
            to_status=to_status,
            note=comment,
            at=at,
        )
        if actor_type == "user":
            audit(
                conn,
                name,
                f"alert_{to_status}",
                alert_id=alert_id,
                rule=current["rule"],
                comment=comment,
            )
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    publish_alert_events((), [row])
    return row


def acknowledge(
    conn: psycopg.Connection, alert_id: int, user: User, comment: str | None = None
) -> dict[str, Any]:
    """Someone owns the alert: records who, when and why, and stops repeat notifications.

    An acknowledged alert still unresolved after the rule's ack timeout returns to open.
    """
    return _change(conn, alert_id, user, "acknowledged", comment, ("open",))


def resolve(
    conn: psycopg.Connection, alert_id: int, user: User, comment: str | None = None
) -> dict[str, Any]:
    """Close a live alert as handled; if the condition persists, the next one is a new alert."""
    return _change(conn, alert_id, user, "resolved", comment, LIVE)


def dismiss(conn: psycopg.Connection, alert_id: int, user: User, comment: str) -> dict[str, Any]:
    """Close a live alert as not worth acting on; the comment (required) says why."""
    if not comment or not comment.strip():
        raise AlertStateError("Dismissing an alert needs a comment saying why.")
    return _change(conn, alert_id, user, "dismissed", comment, LIVE)


def system_resolve(
    conn: psycopg.Connection, alert_id: int, note: str, at: datetime | None = None
) -> dict[str, Any] | None:
    """The engine resolves an alert whose condition cleared, in the caller's transaction.

    Returns the alert, or None when it was no longer live (someone closed it meanwhile).
    """
    current = _locked(conn, alert_id)
    if current["status"] not in LIVE:
        return None
    params = {"id": alert_id, "actor": SYSTEM.name, "comment": note, "at": at, "status": "resolved"}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(CLOSE_SQL, params)
        row = cur.fetchone()
    record_event(
        conn,
        alert_id,
        actor=SYSTEM,
        kind="status",
        from_status=current["status"],
        to_status="resolved",
        note=note,
        at=at,
    )
    return row


# --- silences ------------------------------------------------------------------------------

INSERT_SILENCE_SQL = """
insert into app.silences (rule, entity_type, entity_id, severity, created_by, comment, ends_at)
values (%(rule)s, %(entity_type)s, %(entity_id)s, %(severity)s, %(by)s, %(comment)s, %(ends_at)s)
returning id
"""

EXPIRE_SILENCE_SQL = """
update app.silences set ends_at = greatest(now(), starts_at + interval '1 microsecond'),
    expired_by = %(by)s
where id = %(id)s and ends_at > now()
returning id
"""


def create_silence(
    conn: psycopg.Connection,
    user: User,
    *,
    rule: str | None = None,
    entity_type: str | None = None,
    entity_id: int | None = None,
    severity: str | None = None,
    ends_at: datetime,
    comment: str,
) -> int:
    """Mute notifications of alerts matching every given field until `ends_at`.

    Silenced alerts are still recorded (with `suppressed_by`), just not sent; the silence
    expires by itself at `ends_at`. At least one matcher and a comment are required.
    """
    name, _ = _actor(user)
    if not comment or not comment.strip():
        raise AlertStateError("A silence needs a comment saying why.")
    if rule is None and entity_type is None and entity_id is None and severity is None:
        raise AlertStateError("A silence needs at least one matcher (rule, entity or severity).")
    if severity is not None and severity not in SEVERITIES:
        raise AlertStateError(f"Severity must be one of {', '.join(SEVERITIES)}.")
    if ends_at.tzinfo is None:
        raise AlertStateError("The silence's end time needs a time zone.")
    params = {
        "rule": rule,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "severity": severity,
        "by": name,
        "comment": comment,
        "ends_at": ends_at,
    }
    try:
        with conn.cursor() as cur:
            try:
                cur.execute(INSERT_SILENCE_SQL, params)
            except psycopg.errors.CheckViolation as exc:
                raise AlertStateError("The silence's end time must be in the future.") from exc
            row = cur.fetchone()
        assert row is not None
        silence_id = int(row[0])
        audit(conn, name, "silence_created", silence_id=silence_id, **_matchers(params))
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return silence_id


def _matchers(params: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("rule", "entity_type", "entity_id", "severity", "ends_at", "comment")
    return {k: (str(params[k]) if k == "ends_at" else params[k]) for k in keys}


def expire_silence(conn: psycopg.Connection, silence_id: int, user: User) -> None:
    """End a silence now (its alerts notify again from the next dispatch)."""
    name, _ = _actor(user)
    try:
        with conn.cursor() as cur:
            cur.execute(EXPIRE_SILENCE_SQL, {"id": silence_id, "by": name})
            if cur.fetchone() is None:
                raise AlertStateError(f"Silence {silence_id} does not exist or has already ended.")
        audit(conn, name, "silence_expired", silence_id=silence_id)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


LIST_SILENCES_SQL = """
select id, rule, entity_type, entity_id, severity, created_by, comment, starts_at, ends_at,
    expired_by, created_at, ends_at > now() as is_active
from app.silences
where not %(active_only)s or ends_at > now()
order by ends_at desc, id desc
"""


def list_silences(conn: psycopg.Connection, active_only: bool = True) -> list[dict[str, Any]]:
    """Silences, newest end first; active ones only by default."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(LIST_SILENCES_SQL, {"active_only": active_only})
        return cur.fetchall()


# --- reading -------------------------------------------------------------------------------

LIST_ALERTS_SQL = """
select id, rule, entity_type, entity_id, severity, title, details, status, dedupe_key,
    occurrences, first_seen_at, last_seen_at, created_at, updated_at, resolved_at,
    acknowledged_by, acknowledged_at, ack_comment, closed_by, last_notified_at, notify_count,
    group_key, is_summary, suppressed_by
from app.alerts
where
    (%(status)s::text[] is null or status = any(%(status)s::text[]))
    and (%(severity)s::text is null or severity = %(severity)s::text)
    and (%(rule)s::text is null or rule = %(rule)s::text)
    and (%(entity_type)s::text is null or entity_type = %(entity_type)s::text)
    and (%(entity_id)s::bigint is null or entity_id = %(entity_id)s::bigint)
order by
    case status when 'open' then 0 when 'acknowledged' then 1 else 2 end,
    case severity when 'critical' then 0 when 'warning' then 1 else 2 end,
    last_seen_at desc, id desc
limit %(limit)s
"""


def _statuses(status: str | Iterable[str] | None) -> list[str] | None:
    if status is None:
        return None
    wanted = [status] if isinstance(status, str) else list(status)
    if wanted == ["live"]:
        wanted = list(LIVE)
    unknown = set(wanted) - set(STATUSES)
    if unknown:
        raise AlertStateError(f"Unknown status {sorted(unknown)}; use {', '.join(STATUSES)}.")
    return wanted


def list_alerts(
    conn: psycopg.Connection,
    *,
    status: str | Iterable[str] | None = None,
    severity: str | None = None,
    rule: str | None = None,
    entity_type: str | None = None,
    entity_id: int | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Alerts matching every given filter: live first, then by severity and recency.

    `status` is one status, several, or "live" (open and acknowledged).
    """
    params = {
        "status": _statuses(status),
        "severity": severity,
        "rule": rule,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "limit": limit,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(LIST_ALERTS_SQL, params)
        return cur.fetchall()


ALERT_GROUPS_SQL = """
select
    rule,
    count(*) as total,
    count(*) filter (where status = 'open') as open,
    count(*) filter (where status = 'acknowledged') as acknowledged,
    count(*) filter (where status = 'resolved') as resolved,
    count(*) filter (where status = 'dismissed') as dismissed,
    count(*) filter (where severity = 'critical') as critical,
    count(*) filter (where severity = 'warning') as warning,
    count(*) filter (where severity = 'info') as info,
    count(*) filter (where suppressed_by is not null and status in ('open', 'acknowledged'))
        as suppressed,
    bool_or(is_summary) as has_summary,
    max(last_seen_at) as last_seen_at,
    (array_agg(id order by last_seen_at desc, id desc))[1] as newest_id,
    (array_agg(title order by last_seen_at desc, id desc))[1] as newest_title,
    (array_agg(severity order by
        case severity when 'critical' then 0 when 'warning' then 1 else 2 end))[1]
        as worst_severity
from app.alerts
where
    (%(status)s::text[] is null or status = any(%(status)s::text[]))
    and (%(severity)s::text is null or severity = %(severity)s::text)
group by rule
order by
    min(case severity when 'critical' then 0 when 'warning' then 1 else 2 end),
    max(last_seen_at) desc
"""


def alert_groups(
    conn: psycopg.Connection,
    *,
    status: str | Iterable[str] | None = None,
    severity: str | None = None,
) -> list[dict[str, Any]]:
    """One row per rule: counts by status and severity and the newest alert, worst first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(ALERT_GROUPS_SQL, {"status": _statuses(status), "severity": severity})
        return cur.fetchall()


ALERT_EVENTS_SQL = """
select id, alert_id, at, kind, from_status, to_status, actor, actor_type, note
from app.alert_events
where alert_id = %(id)s
order by at, id
"""


def alert_events(conn: psycopg.Connection, alert_id: int) -> list[dict[str, Any]]:
    """An alert's history, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(ALERT_EVENTS_SQL, {"id": alert_id})
        return cur.fetchall()


def get_alert(conn: psycopg.Connection, alert_id: int) -> dict[str, Any] | None:
    """One alert with every column, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("select * from app.alerts where id = %s", (alert_id,))
        return cur.fetchone()

"""The alert engine: evaluate rules, keep one live alert per dedup key, notify in groups.

Semantics after Prometheus Alertmanager and PagerDuty:

- **Dedup key** `rule:entity`: at most one live (open/acknowledged) alert per key; a persisting
  condition adds an occurrence (count, last seen) to it; resolved/dismissed alerts are final, a
  new occurrence is a new alert. A live alert whose condition cleared is resolved by `system`;
  one a person closed while the condition persisted leaves its entity quiet until it clears.
- **Baseline**: the first evaluation of a rule over existing state raises at most ONE summary
  alert ("563 customers already critical") and remembers those entities in
  `app.alert_rule_state`; they alert individually only after they cleared and came back.
- **for**: a condition must hold that long (pending since, in the rule state) before it alerts.
- **Dispatch**: new alerts are notified per group (`group_by`) once `group_wait` has passed
  since the group's first alert, then at most every `group_interval`; open alerts nobody
  acknowledged are repeated every `repeat_interval`; acknowledged ones returning to open after
  `ack_timeout` are notified again. Silenced or inhibited alerts are recorded but not notified
  (`suppressed_by`), and are notified once the silence ended or the inhibiting alert closed.

Everything takes `now` so tests run on a simulated clock. `run_tick` is what the Dagster
sensors call: one commit per rule (a broken rule does not stop the others), then the timers and
dispatch, then the heartbeat row `__sensors__` the watchdog reads, then the live events.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerting.config import Rule, RulesConfig
from alerting.operations import (
    AUTOMATION,
    SYSTEM,
    event_payload,
    publish_alert_events,
    record_event,
    system_resolve,
)
from opsdash_core import notify
from opsdash_core.settings import get_settings

log = logging.getLogger(__name__)

HEARTBEAT_RULE = "__sensors__"
SUMMARY_KEY = "__summary__"
LIST_LIMIT = 20  # alerts listed by name in one notification; the rest are counted


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Firing:
    """One entity for which a rule's condition holds now."""

    key: str
    entity_id: int | None
    title: str
    details: dict[str, Any]


@dataclass
class RuleOutcome:
    """What one evaluation of one rule changed (for the sensor's log line and tests)."""

    rule: str
    firing: int = 0
    pending: int = 0
    opened: list[int] = field(default_factory=list)
    occurrences: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    summary_id: int | None = None
    baselined: int = 0
    notification_ids: list[int] = field(default_factory=list)
    skipped_reason: str | None = None
    error: str | None = None

    def describe(self) -> str:
        if self.error:
            return f"{self.rule}: failed ({self.error})"
        if self.skipped_reason:
            return f"{self.rule}: not evaluated ({self.skipped_reason})"
        text = (
            f"{self.rule}: {self.firing} firing, {len(self.opened)} new, "
            f"{len(self.resolved)} resolved"
        )
        if self.summary_id is not None:
            text += f", summary alert {self.summary_id} for {self.baselined} already matching"
        return text


@dataclass
class DispatchReport:
    notified: list[int] = field(default_factory=list)
    repeated: list[int] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)
    suppressed: list[int] = field(default_factory=list)
    notification_ids: list[int] = field(default_factory=list)


@dataclass
class TickReport:
    outcomes: list[RuleOutcome] = field(default_factory=list)
    dispatch: DispatchReport = field(default_factory=DispatchReport)
    created: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)

    @property
    def errors(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if o.error]

    def describe(self) -> str:
        parts = [o.describe() for o in self.outcomes]
        d = self.dispatch
        parts.append(
            f"dispatch: {len(d.notified)} notified, {len(d.repeated)} repeated, "
            f"{len(d.reopened)} reopened, {len(d.suppressed)} suppressed, "
            f"{len(d.notification_ids)} notification(s) enqueued"
        )
        return "; ".join(parts)


# --- rule state ----------------------------------------------------------------------------

STATE_SQL = """
insert into app.alert_rule_state (rule) values (%(rule)s)
on conflict (rule) do update set rule = excluded.rule
returning rule, baseline_at, last_evaluated_at, last_success_at, last_error, state
"""

SAVE_STATE_SQL = """
update app.alert_rule_state
set baseline_at = %(baseline_at)s, last_evaluated_at = %(now)s, last_success_at = %(now)s,
    last_error = null, state = %(state)s
where rule = %(rule)s
"""

STATE_ERROR_SQL = """
insert into app.alert_rule_state (rule, last_evaluated_at, last_error)
values (%(rule)s, %(now)s, %(error)s)
on conflict (rule) do update
set last_evaluated_at = excluded.last_evaluated_at, last_error = excluded.last_error
"""

HEARTBEAT_SQL = """
insert into app.alert_rule_state (rule, last_evaluated_at, last_success_at, last_error)
values (%(rule)s, %(now)s, %(now)s, %(error)s)
on conflict (rule) do update
set last_evaluated_at = excluded.last_evaluated_at, last_success_at = excluded.last_success_at,
    last_error = excluded.last_error
"""


def sensor_heartbeat_age(conn: psycopg.Connection, now: datetime | None = None) -> timedelta | None:
    """How long ago an alert sensor last completed a tick; None if none ever did.

    The watchdog (outside Dagster) emails when this grows past its limit.
    """
    row = conn.execute(
        "select last_success_at from app.alert_rule_state where rule = %s", (HEARTBEAT_RULE,)
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return (now or utcnow()) - row[0]


def record_heartbeat(conn: psycopg.Connection, now: datetime, error: str | None = None) -> None:
    conn.execute(HEARTBEAT_SQL, {"rule": HEARTBEAT_RULE, "now": now, "error": error})


# --- evaluation ----------------------------------------------------------------------------

RELATION_SQL = "select to_regclass(%s) is not null"

LIVE_SQL = """
select id, dedupe_key, status, is_summary, last_notified_at, suppressed_by, severity, title,
    rule, entity_type, entity_id
from app.alerts
where rule = %(rule)s and status in ('open', 'acknowledged')
for update
"""

OPEN_SQL = """
insert into app.alerts (
    rule, entity_type, entity_id, severity, title, details, dedupe_key, status, group_key,
    is_summary, created_at, updated_at, first_seen_at, last_seen_at
)
values (
    %(rule)s, %(entity_type)s, %(entity_id)s, %(severity)s, %(title)s, %(details)s, %(dedupe)s,
    'open', %(group_key)s, %(is_summary)s, %(now)s, %(now)s, %(now)s, %(now)s
)
on conflict (dedupe_key) where status in ('open', 'acknowledged') do nothing
returning id, rule, severity, status, entity_type, entity_id, title
"""

# One more occurrence on each live alert whose condition still holds: count and last seen on the
# alert; a history event only when what people read (the title) changed, so an alert that lives
# for days under a 5-minute evaluation does not write hundreds of identical events.
OCCURRENCE_SQL = """
with seen as (
    select * from unnest(%(ids)s::bigint[], %(titles)s::text[], %(details)s::jsonb[])
        as t (id, title, details)
),

changed as (
    select a.id, a.status, a.title as old_title
    from app.alerts as a
    inner join seen on a.id = seen.id
    where a.title is distinct from seen.title
),

updated as (
    update app.alerts as a
    set occurrences = a.occurrences + 1, last_seen_at = %(now)s, updated_at = %(now)s,
        title = seen.title, details = seen.details
    from seen
    where a.id = seen.id
    returning a.id
)

insert into app.alert_events (alert_id, from_status, to_status, actor, actor_type, kind, note, at)
select changed.id, changed.status, changed.status, 'system', 'system', 'occurrence',
    'was: ' || changed.old_title, %(now)s
from changed
where changed.id in (select id from updated)
"""

SUMMARY_UPDATE_SQL = """
update app.alerts
set title = %(title)s, details = details || %(details)s, last_seen_at = %(now)s, updated_at = %(now)s
where id = %(id)s
"""


def _relations_exist(conn: psycopg.Connection, relations: Iterable[str]) -> str | None:
    for relation in relations:
        row = conn.execute(RELATION_SQL, (relation,)).fetchone()
        if not row or not row[0]:
            return f"{relation} does not exist yet"
    return None


def fetch_firing(conn: psycopg.Connection, rule: Rule, now: datetime) -> dict[str, Firing]:
    """The entities for which `rule`'s condition holds at `now`, by entity key."""
    params = {**rule.kind_params().model_dump(), "now": now}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(rule.rule_kind.sql, params)
        return {
            str(r["entity_key"]): Firing(
                str(r["entity_key"]), r["entity_id"], r["title"], r["details"] or {}
            )
            for r in cur.fetchall()
        }


def group_key(rule: Rule, firing: Firing | None) -> str:
    """Alerts sharing this key go out as one notification (Alertmanager group_by)."""
    values = {
        "rule": rule.name,
        "severity": rule.severity,
        "entity_type": rule.entity_type,
        "entity_id": "" if firing is None or firing.entity_id is None else str(firing.entity_id),
    }
    return "|".join(f"{name}={values[name]}" for name in rule.group_by)


def _open(
    conn: psycopg.Connection,
    rule: Rule,
    key: str,
    firing: Firing,
    now: datetime,
    *,
    is_summary: bool = False,
) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            OPEN_SQL,
            {
                "rule": rule.name,
                "entity_type": rule.entity_type,
                "entity_id": firing.entity_id,
                "severity": rule.severity,
                "title": firing.title,
                "details": Jsonb(firing.details),
                "dedupe": f"{rule.name}:{key}",
                "group_key": group_key(rule, None if is_summary else firing),
                "is_summary": is_summary,
                "now": now,
            },
        )
        row = cur.fetchone()
    if row is not None:
        note = "baseline summary" if is_summary else rule.description or None
        record_event(
            conn, row["id"], actor=SYSTEM, kind="status", to_status="open", note=note, at=now
        )
    return row


def evaluate_rule(
    conn: psycopg.Connection, rule: Rule, now: datetime, report: TickReport | None = None
) -> RuleOutcome:
    """Evaluate one rule in the caller's transaction (the caller commits)."""
    report = report if report is not None else TickReport()
    outcome = RuleOutcome(rule.name)
    missing = _relations_exist(conn, rule.rule_kind.relations)
    if missing:
        outcome.skipped_reason = missing
        return outcome
    conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"opsdash.alerting.{rule.name}",))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(STATE_SQL, {"rule": rule.name})
        state_row = cur.fetchone()
    assert state_row is not None
    state: dict[str, Any] = dict(state_row["state"] or {})
    firing = fetch_firing(conn, rule, now)
    outcome.firing = len(firing)

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(LIVE_SQL, {"rule": rule.name})
        live_rows = cur.fetchall()
    prefix = f"{rule.name}:"
    live = {r["dedupe_key"].removeprefix(prefix): r for r in live_rows if not r["is_summary"]}
    summary = next((r for r in live_rows if r["is_summary"]), None)

    # `for`: a condition alerts once it has held that long (a live alert already did).
    pending_since = {k: datetime.fromisoformat(v) for k, v in state.get("pending", {}).items()}
    pending_since = {k: pending_since.get(k, now) for k in firing}
    active = {k: f for k, f in firing.items() if k in live or now - pending_since[k] >= rule.for_}
    outcome.pending = len(firing) - len(active)

    # Entities already matching at the first evaluation stay covered by the summary alert
    # until they clear; only then can they alert on their own.
    baseline_keys = set(state.get("baseline_keys", [])) & set(firing)
    baseline_at = state_row["baseline_at"]
    if baseline_at is None:
        baseline_at = now
        # Existing state is existing whatever `for` says: pending entities join the baseline.
        fresh = [k for k in firing if k not in live]
        if len(fresh) > 1:
            baseline_keys = set(fresh)
            title = rule.summary_title(len(fresh))
            sample = sorted(fresh)[:LIST_LIMIT]
            details = {"count": len(fresh), "sample": [firing[k].title for k in sample]}
            row = _open(
                conn,
                rule,
                SUMMARY_KEY,
                Firing(SUMMARY_KEY, None, title, details),
                now,
                is_summary=True,
            )
            if row is not None:
                outcome.summary_id = row["id"]
                report.created.append(row)
            outcome.baselined = len(fresh)

    # An alert someone closed by hand while its condition persisted stays closed, and its
    # entity stays quiet until the condition clears (then a new occurrence is a new alert).
    quiet = set(state.get("quiet_keys", [])) | {
        k for k in state.get("active_keys", []) if k not in live
    }
    quiet &= set(firing)

    new_alerts: list[dict[str, Any]] = []
    seen_ids: list[int] = []
    seen_titles: list[str] = []
    seen_details: list[Jsonb] = []
    for key, fire in active.items():
        if key in baseline_keys or key in quiet:
            continue
        if key in live:
            seen_ids.append(live[key]["id"])
            seen_titles.append(fire.title)
            seen_details.append(Jsonb(fire.details))
            continue
        row = _open(conn, rule, key, fire, now)
        if row is not None:
            new_alerts.append(row)
    if seen_ids:
        conn.execute(
            OCCURRENCE_SQL,
            {"ids": seen_ids, "titles": seen_titles, "details": seen_details, "now": now},
        )
    outcome.opened = [r["id"] for r in new_alerts]
    outcome.occurrences = seen_ids
    report.created.extend(new_alerts)

    # Conditions that cleared: resolve, and tell whoever was told about them.
    cleared: list[dict[str, Any]] = []
    for key, row in live.items():
        if key in firing:
            continue
        done = system_resolve(conn, row["id"], "condition cleared", at=now)
        if done is not None:
            outcome.resolved.append(row["id"])
            report.updated.append(done)
            if row["last_notified_at"] is not None and row["suppressed_by"] is None:
                cleared.append(row)
    if summary is not None:
        if baseline_keys:
            conn.execute(
                SUMMARY_UPDATE_SQL,
                {
                    "id": summary["id"],
                    "title": rule.summary_title(len(baseline_keys)),
                    "details": Jsonb({"count": len(baseline_keys)}),
                    "now": now,
                },
            )
        else:
            done = system_resolve(
                conn, summary["id"], "every entity of the baseline cleared", at=now
            )
            if done is not None:
                outcome.resolved.append(summary["id"])
                report.updated.append(done)
                if summary["last_notified_at"] is not None:
                    cleared.append(summary)
    if cleared and rule.send_resolved:
        outcome.notification_ids = _notify_group(
            conn, rule, "resolved", cleared, now, mark_notified=False
        )

    state["pending"] = {k: v.isoformat() for k, v in pending_since.items() if k not in active}
    state["baseline_keys"] = sorted(baseline_keys)
    state["quiet_keys"] = sorted(quiet)
    state["active_keys"] = sorted(k for k in active if k not in baseline_keys and k not in quiet)
    conn.execute(
        SAVE_STATE_SQL,
        {"rule": rule.name, "baseline_at": baseline_at, "now": now, "state": Jsonb(state)},
    )
    return outcome


def raise_event_alert(
    conn: psycopg.Connection,
    rule: Rule,
    *,
    entity_key: str,
    title: str,
    details: dict[str, Any],
    entity_id: int | None = None,
    now: datetime | None = None,
    report: TickReport | None = None,
) -> int:
    """An alert raised from outside the rule queries (a failed Dagster run), in the caller's
    transaction: a new live alert, or one more occurrence of the live one for the same key.
    Event alerts never resolve by themselves; dispatch notifies them like any other."""
    now = now or utcnow()
    report = report if report is not None else TickReport()
    conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"opsdash.alerting.{rule.name}",))
    fire = Firing(entity_key, entity_id, title, details)
    row = _open(conn, rule, entity_key, fire, now)
    if row is not None:
        report.created.append(row)
        return int(row["id"])
    existing = conn.execute(
        "select id from app.alerts where dedupe_key = %s and status in ('open', 'acknowledged')",
        (f"{rule.name}:{entity_key}",),
    ).fetchone()
    assert existing is not None
    alert_id = int(existing[0])
    conn.execute(
        OCCURRENCE_SQL,
        {"ids": [alert_id], "titles": [title], "details": [Jsonb(details)], "now": now},
    )
    return alert_id


# --- notifications -------------------------------------------------------------------------


def alert_path(alerts: Sequence[dict[str, Any]], rule: Rule) -> str:
    """Where a notification points in the app: the alert itself, or the rule's alert list."""
    if len(alerts) == 1:
        return f"/alerts?alert={alerts[0]['id']}"
    return f"/alerts?rule={rule.name}"


def absolute_link(path: str) -> str | None:
    """`path` under the app's base URL, when the deployment says where the app lives."""
    base = getattr(get_settings(), "app_base_url", "") or ""
    return f"{base.rstrip('/')}{path}" if base else None


KIND_WORDS = {
    "alert": "",
    "summary": "",
    "pipeline": "",
    "repeat": "Still open: ",
    "resolved": "Resolved: ",
}


def format_notification(
    rule: Rule, kind: str, alerts: Sequence[dict[str, Any]]
) -> tuple[str, str, dict[str, Any]]:
    """Subject, plain-text body and Slack message for a group of one rule's alerts (the outbox
    adds the deep link)."""
    prefix = KIND_WORDS.get(kind, "")
    if len(alerts) == 1:
        headline = f"{prefix}{alerts[0]['title']}"
    else:
        headline = f"{prefix}{len(alerts):,} {rule.name.replace('_', ' ')} alerts"
    subject = f"[opsdash] {rule.severity.upper()}: {headline}"
    shown = list(alerts[:LIST_LIMIT])
    rest = len(alerts) - len(shown)
    lines = [headline, "", rule.description] if rule.description else [headline]
    lines += ["", *(f"  - {a['title']} (alert {a['id']})" for a in shown)]
    if rest > 0:
        lines.append(f"  ...and {rest:,} more.")
    slack = notify.slack_message(
        headline,
        f"*{rule.severity}* · {rule.description or rule.name}",
        [f"{a['title']} (alert {a['id']})" for a in shown],
        f"…and {rest:,} more in the opsdash Alerts page." if rest > 0 else "",
    )
    return subject, "\n".join(lines) + "\n", slack


def enqueue_notification(
    conn: psycopg.Connection,
    *,
    severity: str,
    kind: str,
    subject: str,
    body: str,
    slack: dict[str, Any],
    alert_ids: Sequence[int],
    link: str,
) -> list[int]:
    """Into the outbox, routed by severity when the outbox knows how (notify.enqueue_routed,
    which also adds the deep link `link`, a path in the app), otherwise to email and Slack."""
    routed = getattr(notify, "enqueue_routed", None)
    if routed is not None:
        ids = routed(
            conn,
            severity=severity,
            kind=kind,
            subject=subject,
            body=body,
            slack=slack,
            alert_ids=list(alert_ids),
            link=link,
        )
        return [int(i) for i in ids]
    url = absolute_link(link)
    email_body = f"{body.rstrip()}\n\nOpen in opsdash: {url}\n" if url else body
    return [
        notify.enqueue(conn, "email", subject, email_body, alert_ids=alert_ids),
        notify.enqueue(conn, "slack", subject, body, payload=slack, alert_ids=alert_ids),
    ]


MARK_NOTIFIED_SQL = """
update app.alerts
set last_notified_at = %(now)s, notify_count = notify_count + 1, suppressed_by = null
where id = any(%(ids)s::bigint[])
"""

NOTIFIED_EVENTS_SQL = """
insert into app.alert_events (alert_id, from_status, to_status, actor, actor_type, kind, note, at)
select a.id, a.status, a.status, 'system', 'system', 'notified', %(note)s, %(now)s
from app.alerts as a
where a.id = any(%(ids)s::bigint[])
"""


def _notify_group(
    conn: psycopg.Connection,
    rule: Rule,
    kind: str,
    alerts: Sequence[dict[str, Any]],
    now: datetime,
    *,
    mark_notified: bool = True,
) -> list[int]:
    ids = [int(a["id"]) for a in alerts]
    if kind == "alert" and all(a.get("is_summary") for a in alerts):
        kind = "summary"
    elif kind == "alert" and rule.category == "pipeline":
        kind = "pipeline"
    subject, body, slack = format_notification(rule, kind, alerts)
    outbox_ids = enqueue_notification(
        conn,
        severity=rule.severity,
        kind=kind,
        subject=subject,
        body=body,
        slack=slack,
        alert_ids=ids,
        link=alert_path(alerts, rule),
    )
    if mark_notified:
        conn.execute(MARK_NOTIFIED_SQL, {"ids": ids, "now": now})
    note = f"{kind} notification (outbox {', '.join(map(str, outbox_ids)) or 'none'})"
    conn.execute(NOTIFIED_EVENTS_SQL, {"ids": ids, "now": now, "note": note})
    return outbox_ids


# Alerts that may need a notification: open and never notified, or open and due a repeat.
CANDIDATES_SQL = """
select a.id, a.rule, a.entity_type, a.entity_id, a.severity, a.title, a.status, a.group_key,
    a.created_at, a.last_notified_at, a.is_summary, a.suppressed_by,
    (
        select s.id
        from app.silences as s
        where
            s.starts_at <= %(now)s and s.ends_at > %(now)s
            and (s.rule is null or s.rule = a.rule)
            and (s.entity_type is null or s.entity_type = a.entity_type)
            and (s.entity_id is null or s.entity_id = a.entity_id)
            and (s.severity is null or s.severity = a.severity)
        order by s.ends_at desc
        limit 1
    ) as silence_id
from app.alerts as a
where a.status = 'open' and a.rule = any(%(rules)s::text[])
order by a.created_at, a.id
for update of a skip locked
"""

GROUP_LAST_SQL = """
select group_key, max(last_notified_at) as last_notified_at
from app.alerts
where group_key = any(%(keys)s::text[]) and last_notified_at is not null
group by group_key
"""

LIVE_BY_RULE_SQL = """
select rule, min(id) as alert_id
from app.alerts
where status in ('open', 'acknowledged') and rule = any(%(rules)s::text[])
group by rule
"""

SET_SUPPRESSED_SQL = """
update app.alerts set suppressed_by = %(why)s
where id = %(id)s and suppressed_by is distinct from %(why)s
"""

ACK_TIMEOUT_SQL = """
select id, rule, acknowledged_at from app.alerts
where status = 'acknowledged' and rule = any(%(rules)s::text[])
for update skip locked
"""

REOPEN_SQL = """
update app.alerts
set status = 'open', updated_at = %(now)s, last_notified_at = null
where id = %(id)s and status = 'acknowledged'
returning id, rule, severity, status, entity_type, entity_id, title
"""


def reopen_timed_out(
    conn: psycopg.Connection, config: RulesConfig, now: datetime, report: TickReport
) -> list[int]:
    """Acknowledged alerts still unresolved after their rule's ack_timeout return to open."""
    rules = {r.name: r for r in config.rules}
    reopened: list[int] = []
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(ACK_TIMEOUT_SQL, {"rules": list(rules)})
        for row in cur.fetchall():
            since = row["acknowledged_at"]
            if since is None or now - since < rules[row["rule"]].ack_timeout:
                continue
            cur.execute(REOPEN_SQL, {"id": row["id"], "now": now})
            done = cur.fetchone()
            if done is None:
                continue
            record_event(
                conn,
                row["id"],
                actor=AUTOMATION,
                kind="reopened",
                from_status="acknowledged",
                to_status="open",
                note=f"acknowledged {since:%Y-%m-%d %H:%M} UTC and still unresolved after "
                f"{rules[row['rule']].ack_timeout}",
                at=now,
            )
            reopened.append(row["id"])
            report.updated.append(done)
    report.dispatch.reopened.extend(reopened)
    return reopened


def dispatch(
    conn: psycopg.Connection, config: RulesConfig, now: datetime, report: TickReport
) -> DispatchReport:
    """Send what is due, in the caller's transaction: first notifications of new alerts per
    group (after group_wait / group_interval), repeats of unacknowledged alerts; silenced or
    inhibited alerts are marked, not sent."""
    d = report.dispatch
    rules = {r.name: r for r in config.rules}
    conn.execute("select pg_advisory_xact_lock(hashtext('opsdash.alerting.dispatch'))")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(CANDIDATES_SQL, {"now": now, "rules": list(rules)})
        candidates = cur.fetchall()
        sources = sorted({s for r in config.rules for s in r.inhibited_by})
        cur.execute(LIVE_BY_RULE_SQL, {"rules": sources})
        inhibitors = {r["rule"]: r["alert_id"] for r in cur.fetchall()}

    due_new: dict[str, list[dict[str, Any]]] = defaultdict(list)
    due_repeat: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for alert in candidates:
        rule = rules[alert["rule"]]
        why: str | None = None
        if alert["silence_id"] is not None:
            why = f"silence:{alert['silence_id']}"
        else:
            source = next((s for s in rule.inhibited_by if s in inhibitors), None)
            if source is not None:
                why = f"inhibited:{inhibitors[source]}"
        if why is not None:
            conn.execute(SET_SUPPRESSED_SQL, {"id": alert["id"], "why": why})
            d.suppressed.append(alert["id"])
            continue
        if alert["suppressed_by"] is not None:
            conn.execute(SET_SUPPRESSED_SQL, {"id": alert["id"], "why": None})
        group = alert["group_key"] or rule.name
        if alert["last_notified_at"] is None:
            due_new[group].append(alert)
        elif now - alert["last_notified_at"] >= rule.repeat_interval:
            due_repeat[group].append(alert)

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(GROUP_LAST_SQL, {"keys": list(due_new)})
        group_last = {r["group_key"]: r["last_notified_at"] for r in cur.fetchall()}
    for group, alerts in due_new.items():
        rule = rules[alerts[0]["rule"]]
        last = group_last.get(group)
        if last is None:
            ready = now - min(a["created_at"] for a in alerts) >= rule.group_wait
        else:
            ready = now - last >= rule.group_interval
        if not ready:
            continue
        d.notification_ids += _notify_group(conn, rule, "alert", alerts, now)
        d.notified += [a["id"] for a in alerts]
    for _group, alerts in due_repeat.items():
        rule = rules[alerts[0]["rule"]]
        d.notification_ids += _notify_group(conn, rule, "repeat", alerts, now)
        d.repeated += [a["id"] for a in alerts]
    return d


# --- the tick ------------------------------------------------------------------------------


def run_tick(
    conn: psycopg.Connection,
    config: RulesConfig,
    *,
    rules: Sequence[Rule] | None = None,
    now: datetime | None = None,
    housekeeping: bool = True,
    publish: bool = True,
) -> TickReport:
    """Evaluate `rules` (default: every enabled scheduled rule), then timers and dispatch.

    Commits after each rule and after dispatch; a rule that raises is rolled back, its error
    kept in `app.alert_rule_state.last_error` and the report, and the others still run.
    Records the sensors' heartbeat last and publishes the live events after the commits.
    """
    now = now or utcnow()
    report = TickReport()
    chosen = rules if rules is not None else [r for r in config.enabled if r.trigger != "event"]
    for rule in chosen:
        mark = len(report.created), len(report.updated)
        try:
            outcome = evaluate_rule(conn, rule, now, report)
            conn.commit()
        except Exception as exc:
            conn.rollback()
            del report.created[mark[0] :], report.updated[mark[1] :]
            log.exception("alert rule %s failed", rule.name)
            outcome = RuleOutcome(rule.name, error=f"{type(exc).__name__}: {exc}")
            conn.execute(STATE_ERROR_SQL, {"rule": rule.name, "now": now, "error": outcome.error})
            conn.commit()
        report.outcomes.append(outcome)
    if housekeeping:
        reopen_timed_out(conn, config, now, report)
    dispatch(conn, config, now, report)
    errors = "; ".join(o.describe() for o in report.errors) or None
    record_heartbeat(conn, now, errors)
    conn.commit()
    if publish:
        publish_alert_events(report.created, _dedupe(report.updated))
    return report


def _dedupe(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[Any, dict[str, Any]] = {}
    for row in rows:
        latest[row["id"]] = row
    return list(latest.values())


__all__ = [
    "HEARTBEAT_RULE",
    "DispatchReport",
    "RuleOutcome",
    "TickReport",
    "dispatch",
    "evaluate_rule",
    "event_payload",
    "raise_event_alert",
    "run_tick",
    "sensor_heartbeat_age",
]

"""Alert rule "customer entered the critical tier", evaluated against `marts.customer_health`.

One evaluation, in the caller's transaction: open an alert for every critical customer without a
live one, resolve live alerts of customers who left the critical tier, and enqueue one email and
one Slack summary of the newly critical customers. Set-based SQL, so the first run after a cold
build (thousands of critical customers at once) is one statement and one notification per
channel, not thousands. Re-running with unchanged data changes nothing: the partial unique index
`alerts_live_dedupe_idx` and the `not exists` guard make opening idempotent, and a summary is
enqueued only when something new opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from opsdash_core.notify import enqueue, slack_message

RULE = "customer_critical"
TOP_N = 20

TABLE_EXISTS_SQL = "select to_regclass('marts.customer_health') is not null"

# Two evaluations at once (a sensor tick and a manual run) queue here instead of racing.
LOCK_SQL = "select pg_advisory_xact_lock(hashtext('opsdash.alerting.customer_critical'))"

OPEN_NEW_SQL = """
insert into app.alerts (rule, entity_type, entity_id, severity, title, details, dedupe_key)
select
    %(rule)s,
    'customer',
    h.customer_id,
    'critical',
    'Customer ' || h.customer_id || ' entered the critical risk tier',
    jsonb_build_object(
        'risk_score', h.risk_score,
        'risk_tier', h.risk_tier,
        'days_since_last_session', h.days_since_last_session,
        'sessions_30d', h.sessions_30d,
        'avg_rating_30d', h.avg_rating_30d,
        'inbound_calls_30d', h.inbound_calls_30d,
        'computed_at', h.computed_at
    ),
    %(rule)s || ':' || h.customer_id
from marts.customer_health as h
where
    h.risk_tier = 'critical'
    and not exists (
        select 1
        from app.alerts as a
        where a.dedupe_key = %(rule)s || ':' || h.customer_id and a.status in ('open', 'acknowledged')
    )
on conflict (dedupe_key) where status in ('open', 'acknowledged') do nothing
returning id, entity_id, details
"""

OPENED_EVENTS_SQL = """
insert into app.alert_events (alert_id, from_status, to_status, actor, note)
select opened.alert_id, null, 'open', 'system', %(note)s
from unnest(%(ids)s::bigint[]) as opened (alert_id)
"""

# Acknowledged alerts are live too: a customer who recovered resolves them as well.
RESOLVE_SQL = """
with recovered as (
    select a.id, a.status
    from app.alerts as a
    where
        a.rule = %(rule)s
        and a.status in ('open', 'acknowledged')
        and not exists (
            select 1
            from marts.customer_health as h
            where h.customer_id = a.entity_id and h.risk_tier = 'critical'
        )
    for update of a
),

resolved as (
    update app.alerts as a
    set status = 'resolved', resolved_at = now(), updated_at = now()
    from recovered as r
    where a.id = r.id
    returning a.id, r.status as from_status
)

insert into app.alert_events (alert_id, from_status, to_status, actor, note)
select resolved.id, resolved.from_status, 'resolved', 'system', %(note)s
from resolved
returning alert_id
"""

STILL_OPEN_SQL = "select count(*) from app.alerts where rule = %(rule)s and status in ('open', 'acknowledged')"


@dataclass(frozen=True)
class CriticalCustomer:
    """A customer whose critical alert was just opened, with the metrics that explain it."""

    alert_id: int
    customer_id: int
    risk_score: float | None
    days_since_last_session: int | None = None
    sessions_30d: int | None = None
    avg_rating_30d: float | None = None
    inbound_calls_30d: int | None = None

    @classmethod
    def from_row(cls, alert_id: int, customer_id: int, details: dict[str, Any]) -> CriticalCustomer:
        return cls(
            alert_id=alert_id,
            customer_id=customer_id,
            risk_score=details.get("risk_score"),
            days_since_last_session=details.get("days_since_last_session"),
            sessions_30d=details.get("sessions_30d"),
            avg_rating_30d=details.get("avg_rating_30d"),
            inbound_calls_30d=details.get("inbound_calls_30d"),
        )


@dataclass
class EvaluationSummary:
    """What one evaluation changed. `skipped_reason` is set when nothing could be evaluated."""

    new: int = 0
    resolved: int = 0
    still_open: int = 0
    new_alert_ids: list[int] = field(default_factory=list)
    resolved_alert_ids: list[int] = field(default_factory=list)
    notification_ids: list[int] = field(default_factory=list)
    skipped_reason: str | None = None

    def describe(self) -> str:
        if self.skipped_reason:
            return f"{RULE}: not evaluated ({self.skipped_reason})"
        return (
            f"{RULE}: {self.new} new, {self.resolved} resolved, {self.still_open} open; "
            f"{len(self.notification_ids)} notification(s) enqueued"
        )


def top_customers(customers: Sequence[CriticalCustomer], n: int = TOP_N) -> list[CriticalCustomer]:
    """The `n` riskiest, highest score first (ties by customer id so the order is stable)."""
    return sorted(customers, key=lambda c: (-(c.risk_score or 0.0), c.customer_id))[:n]


def _num(value: float | None, fmt: str = "{:.2f}", missing: str = "n/a") -> str:
    return missing if value is None else fmt.format(value)


def customer_line(c: CriticalCustomer) -> str:
    """One human-readable line of metrics for a customer (shared by email and Slack)."""
    return (
        f"customer {c.customer_id}: risk {_num(c.risk_score)}, "
        f"last session {_num(c.days_since_last_session, '{:.0f}')} d ago, "
        f"{_num(c.sessions_30d, '{:.0f}')} sessions/30d, "
        f"rating {_num(c.avg_rating_30d, '{:.1f}')}, "
        f"{_num(c.inbound_calls_30d, '{:.0f}')} support calls/30d"
    )


def _headline(count: int) -> str:
    noun = "customer" if count == 1 else "customers"
    return f"{count:,} {noun} entered the critical risk tier"


def format_email(
    customers: Sequence[CriticalCustomer], resolved: int, still_open: int, top_n: int = TOP_N
) -> tuple[str, str]:
    """Subject and plain-text body summarizing one evaluation's newly critical customers."""
    top = top_customers(customers, top_n)
    lines = [
        f"{_headline(len(customers))} at the latest customer-health refresh.",
        f"Open critical-customer alerts: {still_open:,}; resolved in this check: {resolved:,}.",
        "",
        f"Top {len(top)} by risk score:",
        *(f"  - {customer_line(c)}" for c in top),
    ]
    rest = len(customers) - len(top)
    if rest > 0:
        lines += ["", f"...and {rest:,} more. See the Alerts page in opsdash for the full list."]
    return f"[opsdash] {_headline(len(customers))}", "\n".join(lines) + "\n"


def format_slack(
    customers: Sequence[CriticalCustomer], resolved: int, still_open: int, top_n: int = TOP_N
) -> dict[str, Any]:
    """The Slack Block Kit message for the same summary."""
    top = top_customers(customers, top_n)
    rest = len(customers) - len(top)
    summary = (
        f"*{len(customers):,}* new critical · *{still_open:,}* open · "
        f"{resolved:,} resolved in this check"
    )
    footer = f"…and {rest:,} more in the opsdash Alerts page." if rest > 0 else ""
    return slack_message(
        _headline(len(customers)), summary, [customer_line(c) for c in top], footer
    )


def evaluate_customer_critical(
    conn: psycopg.Connection, *, top_n: int = TOP_N
) -> EvaluationSummary:
    """Evaluate the rule in `conn`'s current transaction; the caller commits (or rolls back)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(TABLE_EXISTS_SQL)
        exists = cur.fetchone()
        if not exists or not next(iter(exists.values())):
            return EvaluationSummary(skipped_reason="marts.customer_health does not exist yet")
        cur.execute(LOCK_SQL)
        cur.execute(OPEN_NEW_SQL, {"rule": RULE})
        opened = [
            CriticalCustomer.from_row(r["id"], r["entity_id"], r["details"]) for r in cur.fetchall()
        ]
        new_ids = [c.alert_id for c in opened]
        if new_ids:
            cur.execute(
                OPENED_EVENTS_SQL,
                {"ids": new_ids, "note": "customer entered the critical risk tier"},
            )
        cur.execute(RESOLVE_SQL, {"rule": RULE, "note": "customer left the critical risk tier"})
        resolved_ids = [r["alert_id"] for r in cur.fetchall()]
        cur.execute(STILL_OPEN_SQL, {"rule": RULE})
        count_row = cur.fetchone() or {"count": 0}
        still_open = int(count_row["count"])

    summary = EvaluationSummary(
        new=len(new_ids),
        resolved=len(resolved_ids),
        still_open=still_open,
        new_alert_ids=new_ids,
        resolved_alert_ids=resolved_ids,
    )
    if opened:
        subject, body = format_email(opened, len(resolved_ids), still_open, top_n)
        slack = format_slack(opened, len(resolved_ids), still_open, top_n)
        summary.notification_ids = [
            enqueue(conn, "email", subject, body, alert_ids=new_ids),
            enqueue(conn, "slack", subject, body, payload=slack, alert_ids=new_ids),
        ]
    return summary

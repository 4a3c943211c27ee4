"""The watchdog of alerting itself: when the alert sensors stop completing ticks, say so by a
path that does not depend on them.

The alert engine records each completed sensor tick in `app.alert_rule_state` (row
`__sensors__`, `last_success_at`). `check_sensors` (run every minute by `opsdash watchdog`, a
process `opsdash up` starts next to Dagster) sends ONE email straight through SMTP when that
time is older than OPSDASH_WATCHDOG_STALE_MINUTES, and one recovery email when ticks resume.
Its own state lives in the row `__watchdog__`, locked while it decides, so a restart or a
second watchdog never repeats an email. No `__sensors__` row means the engine has not
reported yet: nothing is known, nothing is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from opsdash_core.settings import Settings

SENSORS_ROW = "__sensors__"
WATCHDOG_ROW = "__watchdog__"

State = Literal["unknown", "ok", "stale"]
Action = Literal["alerted", "recovered"]


@dataclass(frozen=True)
class SensorHealth:
    """What the app and the watchdog know about the alert sensors' last completed tick."""

    state: State
    last_success_at: datetime | None
    stale_after: timedelta

    def describe(self) -> str:
        if self.last_success_at is None:
            return "alert sensors: no tick recorded yet"
        return f"alert sensors: {self.state}, last completed tick {self.last_success_at:%Y-%m-%d %H:%M:%S %Z}"


@dataclass(frozen=True)
class WatchdogResult:
    health: SensorHealth
    action: Action | None = None

    def describe(self) -> str:
        return self.health.describe() + (f"; {self.action} email sent" if self.action else "")


def sensor_health(
    conn: psycopg.Connection, settings: Settings, *, now: datetime | None = None
) -> SensorHealth:
    """Whether the alert sensors completed a tick recently (for the app's banner too)."""
    now = now or datetime.now(UTC)
    stale_after = timedelta(minutes=settings.watchdog_stale_minutes)
    row = conn.execute(
        "select last_success_at from app.alert_rule_state where rule = %s", (SENSORS_ROW,)
    ).fetchone()
    last = row[0] if row else None
    if last is None:
        return SensorHealth("unknown", None, stale_after)
    return SensorHealth("stale" if now - last > stale_after else "ok", last, stale_after)


def _send(settings: Settings, subject: str, body: str, message_id: str) -> None:
    from opsdash_core.notify import send_email

    send_email(settings, subject, body, tries=2, message_id=message_id)


def check_sensors(
    conn: psycopg.Connection,
    settings: Settings,
    *,
    now: datetime | None = None,
    send: Callable[[Settings, str, str, str], None] = _send,
) -> WatchdogResult:
    """One watchdog check; commits its own state. At most one email per stale episode, one
    recovery email after it. A send that fails leaves the state as it was, so the next check
    tries again (with the same Message-ID, so a receiver can de-duplicate)."""
    from opsdash_core.notify import message_domain

    now = now or datetime.now(UTC)
    health = sensor_health(conn, settings, now=now)
    if health.state == "unknown":
        conn.commit()
        return WatchdogResult(health)
    conn.execute(
        "insert into app.alert_rule_state (rule) values (%s) on conflict (rule) do nothing",
        (WATCHDOG_ROW,),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select state from app.alert_rule_state where rule = %s for update", (WATCHDOG_ROW,)
        )
        row = cur.fetchone()
    state: dict[str, Any] = dict(row["state"] if row else {})
    alerting = bool(state.get("alerting"))
    last = health.last_success_at
    assert last is not None
    episode = state.get("episode") or int(last.timestamp())
    domain = message_domain(settings)
    action: Action | None = None
    if health.state == "stale" and not alerting:
        minutes = (now - last).total_seconds() / 60
        subject = f"[opsdash] Alerting is not running: no alert-sensor tick for {minutes:.0f} min"
        body = (
            f"The alert sensors last completed a tick at {last:%Y-%m-%d %H:%M:%S %Z} "
            f"({minutes:.0f} minutes ago; the limit is {settings.watchdog_stale_minutes:g}).\n"
            "Until they run again, no alert is raised or delivered. Check the Dagster daemon "
            "(`opsdash status`, the Dagster UI's sensor page and its log).\n\n"
            f"Open in opsdash: {settings.app_base_url}/alerts\n"
            "This email comes from the opsdash watchdog, outside Dagster; one more follows when "
            "the sensors recover.\n"
        )
        episode = int(last.timestamp())
        send(settings, subject, body, f"<opsdash-watchdog-{episode}.stale@{domain}>")
        state = {"alerting": True, "episode": episode, "alerted_at": now.isoformat()}
        action = "alerted"
    elif health.state == "ok" and alerting:
        subject = "[opsdash] Alerting is running again"
        body = (
            f"The alert sensors completed a tick at {last:%Y-%m-%d %H:%M:%S %Z}; alerts are "
            "evaluated and delivered again. Notifications held during the gap are sent from the "
            "outbox.\n"
        )
        send(settings, subject, body, f"<opsdash-watchdog-{episode}.recovered@{domain}>")
        state = {"alerting": False, "episode": None, "recovered_at": now.isoformat()}
        action = "recovered"
    if action:
        conn.execute(
            "update app.alert_rule_state set state = %s, last_evaluated_at = %s where rule = %s",
            (Jsonb(state), now, WATCHDOG_ROW),
        )
    conn.commit()
    return WatchdogResult(health, action)

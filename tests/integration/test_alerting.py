"""The alert engine (rules from YAML, baseline summaries, dedup, grouping, silences,
inhibition, timers), the outbox and the sensors against a real PostgreSQL scratch database
(Alembic migrations applied), a real SMTP sink and a real webhook receiver. Time is simulated:
every evaluation takes `now`, nothing sleeps."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import psycopg
import pytest
from psycopg.rows import dict_row

from alerting import operations as ops
from alerting.config import RulesConfig, load_rules
from alerting.engine import TickReport, raise_event_alert, run_tick, sensor_heartbeat_age
from opsdash_core import events
from opsdash_core.accounts import User
from opsdash_core.db import connect
from opsdash_core.notify import DeliveryReport, deliver_pending, enqueue
from opsdash_core.settings import get_settings, reset_settings
from opsdash_stack.sinks import WebhookReceiver, free_port, smtp_sink, webhook_receiver
from orchestration.defs.alerting.sensors import (
    CUSTOMER_HEALTH,
    customer_health_alert_sensor,
    notification_outbox_sensor,
)
from orchestration.defs.resources import WarehouseResource

pytestmark = pytest.mark.integration

OPERATOR = User(id=2, username="otto", role="operator")

# The dbt mart's columns the customer rules read; the real model is built by dbt.
CUSTOMER_HEALTH_DDL = """
create schema if not exists marts;
create table marts.customer_health (
    customer_id bigint primary key,
    risk_score double precision not null,
    risk_tier text not null check (risk_tier in ('low', 'medium', 'high', 'critical')),
    risk_score_change_7d double precision,
    top_risk_component text,
    days_since_last_session integer,
    sessions_30d integer,
    avg_rating_30d numeric(3, 2),
    inbound_calls_30d integer,
    computed_at timestamptz not null default now()
);
"""

UPSERT_HEALTH = """
insert into marts.customer_health
    (customer_id, risk_score, risk_tier, days_since_last_session, sessions_30d,
     avg_rating_30d, inbound_calls_30d)
values (%s, %s, %s, 30, 0, 2.5, 3)
on conflict (customer_id) do update
set risk_score = excluded.risk_score, risk_tier = excluded.risk_tier, computed_at = now()
"""

RULES_YAML = """
defaults: {group_wait: 0s, group_interval: 1m, repeat_interval: 4h, ack_timeout: 2h}
rules:
  - name: customer_critical
    kind: customer_risk
    severity: critical
    entity_type: customer
    trigger: customer_health
    summary: "{count} customers already critical"
    params: {tiers: [critical]}
    inhibited_by: [sessions_stale]
  - name: sessions_stale
    kind: sessions_stale
    severity: critical
    entity_type: table
    category: pipeline
    for: 5m
    params: {max_age_minutes: 30}
"""

T0 = datetime.now(UTC).replace(microsecond=0)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class Env:
    url: str
    smtp_port: int
    hooks: WebhookReceiver
    config: RulesConfig

    def tick(self, minutes: float, **kwargs: Any) -> TickReport:
        with connect(self.url) as conn:
            return run_tick(conn, self.config, now=at(minutes), **kwargs)

    def rule(self, name: str) -> Any:
        return self.config.rule(name)


@pytest.fixture
def env(warehouse_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Env]:
    """A migrated scratch warehouse with a hand-made customer_health, settings pointing at it,
    a free SMTP port (no server yet), a running webhook receiver and a small rules file."""
    # The simulated clock starts at each test, not at import: silences start at the database's
    # now(), so a clock fixed when the module was collected falls behind in a long run.
    global T0
    T0 = datetime.now(UTC).replace(microsecond=0)
    with connect(warehouse_url) as conn:
        conn.execute(CUSTOMER_HEALTH_DDL)
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES_YAML)
    smtp_port = free_port()
    with webhook_receiver(0) as hooks:
        monkeypatch.setenv("WAREHOUSE_URL", warehouse_url)
        monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("SMTP_PORT", str(smtp_port))
        monkeypatch.setenv("ALERT_EMAIL_TO", "ops@example.test")
        monkeypatch.setenv("SLACK_WEBHOOK_URL", hooks.url)
        monkeypatch.setenv("ALERT_RULES_PATH", str(rules_file))
        reset_settings()
        config = load_rules(rules_file, override=False)
        yield Env(warehouse_url, smtp_port, hooks, config)
    reset_settings()


def set_health(url: str, *rows: tuple[int, float, str]) -> None:
    with connect(url) as conn, conn.cursor() as cur:
        cur.executemany(UPSERT_HEALTH, rows)


def deliver(url: str, now: datetime | None = None) -> DeliveryReport:
    return deliver_pending(url, get_settings(), backoff_s=0.01, now=now)


def rows(url: str, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def outbox(url: str) -> list[dict[str, Any]]:
    return rows(url, "select * from app.notification_outbox order by id")


def test_persisting_condition_alerts_once_notifies_once_and_resolves_once(env: Env) -> None:
    only = [env.rule("customer_critical")]
    first = env.tick(0, rules=only)  # empty mart: the baseline is "nothing matches"
    assert first.outcomes[0].firing == 0
    set_health(env.url, (101, 93.0, "critical"), (102, 61.0, "high"), (103, 5.0, "low"))
    with smtp_sink(env.smtp_port) as mail:
        report = env.tick(1, rules=only)
        assert len(report.outcomes[0].opened) == 1
        assert report.outcomes[0].summary_id is None
        assert len(report.dispatch.notification_ids) >= 1
        assert deliver(env.url).sent
        (alert,) = rows(env.url, "select * from app.alerts")
        assert (alert["rule"], alert["entity_id"], alert["status"], alert["dedupe_key"]) == (
            "customer_critical",
            101,
            "open",
            "customer_critical:101",
        )
        assert alert["details"]["risk_score"] == 93.0
        assert alert["notify_count"] == 1
        assert len(mail.messages) == 1
        assert "Customer 101 is at critical churn risk" in mail.messages[0]["Subject"]
        assert len(env.hooks.payloads) == 1

        again = env.tick(2, rules=only)  # the condition persists: one more occurrence
        assert again.outcomes[0].occurrences == [alert["id"]]
        assert again.dispatch.notification_ids == []
        assert deliver(env.url).attempted == 0
        (alert,) = rows(env.url, "select * from app.alerts")
        assert (alert["occurrences"], alert["last_seen_at"]) == (2, at(2))

        set_health(env.url, (101, 40.0, "medium"))  # cleared: resolved, one resolved message
        cleared = env.tick(3, rules=only)
        assert cleared.outcomes[0].resolved == [alert["id"]]
        assert deliver(env.url).sent
        assert len(mail.messages) == 2
        assert mail.messages[1]["Subject"].startswith("[opsdash] CRITICAL: Resolved: Customer 101")
        assert len(env.hooks.payloads) == 2
        assert env.tick(4, rules=only).outcomes[0].resolved == []
        assert deliver(env.url).attempted == 0
    with connect(env.url) as conn:
        kinds = [e["kind"] for e in ops.alert_events(conn, alert["id"])]
    assert kinds == ["status", "notified", "status", "notified"]  # same title: no event

    set_health(env.url, (101, 97.0, "critical"))  # relapse: a new alert, the old one stays closed
    env.tick(5, rules=only)
    statuses = rows(env.url, "select status from app.alerts where entity_id = 101 order by id")
    assert [s["status"] for s in statuses] == ["resolved", "open"]


def test_closed_by_hand_while_firing_stays_closed_until_the_condition_clears(env: Env) -> None:
    only = [env.rule("customer_critical")]
    env.tick(0, rules=only)
    set_health(env.url, (61, 90.0, "critical"))
    env.tick(1, rules=only)
    (alert,) = rows(env.url, "select id from app.alerts")
    with connect(env.url) as conn:
        ops.dismiss(conn, alert["id"], OPERATOR, "known: moving abroad")
    assert env.tick(2, rules=only).outcomes[0].opened == []  # still critical: no new alert
    assert env.tick(3, rules=only).outcomes[0].opened == []
    set_health(env.url, (61, 30.0, "medium"))
    env.tick(4, rules=only)
    set_health(env.url, (61, 92.0, "critical"))  # a new occurrence: a new alert
    assert len(env.tick(5, rules=only).outcomes[0].opened) == 1
    statuses = rows(env.url, "select status from app.alerts order by id")
    assert [r["status"] for r in statuses] == ["dismissed", "open"]


def test_first_evaluation_over_a_populated_mart_raises_one_summary(env: Env) -> None:
    with connect(env.url) as conn:
        conn.execute(
            "insert into marts.customer_health (customer_id, risk_score, risk_tier) "
            "select i, 80 + i / 100.0, 'critical' from generate_series(1, 563) as i"
        )
    only = [env.rule("customer_critical")]
    with smtp_sink(env.smtp_port) as mail:
        report = env.tick(0, rules=only)
        assert report.outcomes[0].baselined == 563
        assert deliver(env.url).sent
        assert len(mail.messages) == 1
        assert mail.messages[0]["Subject"] == "[opsdash] CRITICAL: 563 customers already critical"
    (summary,) = rows(env.url, "select * from app.alerts")
    assert (summary["is_summary"], summary["details"]["count"]) == (True, 563)

    # Later: a newcomer alerts on its own; baseline customers who recover leave the summary.
    set_health(env.url, (900, 99.0, "critical"), (1, 10.0, "low"))
    env.tick(1, rules=only)
    with connect(env.url) as conn:
        live = ops.list_alerts(conn, status="live")
    assert sorted((a["entity_id"] or 0, a["is_summary"]) for a in live) == [(0, True), (900, False)]
    (summary,) = [a for a in live if a["is_summary"]]
    assert summary["title"] == "562 customers already critical"
    set_health(env.url, (1, 99.0, "critical"))  # back after clearing: now a real alert
    env.tick(2, rules=only)
    with connect(env.url) as conn:
        assert len(ops.list_alerts(conn, status="live", entity_id=1)) == 1


def test_alerts_within_the_group_window_go_out_as_one_notification(env: Env) -> None:
    rule = env.rule("customer_critical").model_copy(
        update={"group_wait": timedelta(minutes=5), "group_interval": timedelta(minutes=10)}
    )
    env.config.rules[0] = rule
    env.tick(0, rules=[rule])
    set_health(env.url, (1, 90.0, "critical"), (2, 91.0, "critical"))
    assert env.tick(1, rules=[rule]).dispatch.notified == []  # group_wait
    set_health(env.url, (3, 92.0, "critical"))
    assert env.tick(3, rules=[rule]).dispatch.notified == []
    grouped = env.tick(6, rules=[rule])
    assert len(grouped.dispatch.notified) == 3
    (email,) = [o for o in outbox(env.url) if o["channel"] == "email"]
    assert email["subject"] == "[opsdash] CRITICAL: 3 customer critical alerts"
    assert sorted(email["alert_ids"]) == sorted(grouped.dispatch.notified)
    set_health(env.url, (4, 93.0, "critical"))
    assert env.tick(7, rules=[rule]).dispatch.notified == []  # group_interval since the last
    assert len(env.tick(16, rules=[rule]).dispatch.notified) == 1


def test_a_silenced_rule_records_but_sends_nothing(env: Env) -> None:
    only = [env.rule("customer_critical")]
    env.tick(0, rules=only)
    with connect(env.url) as conn:
        silence_id = ops.create_silence(
            conn, OPERATOR, rule="customer_critical", ends_at=at(60), comment="data backfill"
        )
    set_health(env.url, (11, 90.0, "critical"))
    with smtp_sink(env.smtp_port) as mail:
        env.tick(1, rules=only)
        env.tick(2, rules=only)
        assert deliver(env.url).attempted == 0
        assert mail.messages == []
    assert env.hooks.payloads == []
    assert outbox(env.url) == []
    (alert,) = rows(env.url, "select * from app.alerts")
    assert (alert["status"], alert["suppressed_by"]) == ("open", f"silence:{silence_id}")

    with connect(env.url) as conn:  # the silence ends: the alert is notified
        ops.expire_silence(conn, silence_id, OPERATOR)
    assert env.tick(3, rules=only).dispatch.notified == [alert["id"]]
    (alert,) = rows(env.url, "select * from app.alerts")
    assert alert["suppressed_by"] is None


def test_a_silence_ends_by_time_alone_and_notifications_resume(env: Env) -> None:
    """Nobody expires the silence: once the simulated clock passes its end time, the next tick
    notifies the alert it held back, and new alerts of the rule go out again."""
    only = [env.rule("customer_critical")]
    env.tick(0, rules=only)
    with connect(env.url) as conn:
        silence_id = ops.create_silence(
            conn, OPERATOR, rule="customer_critical", ends_at=at(30), comment="planned migration"
        )
    set_health(env.url, (21, 90.0, "critical"))
    with smtp_sink(env.smtp_port) as mail:
        for minute in (1, 15, 29.5):
            assert env.tick(minute, rules=only).dispatch.notified == []
        assert deliver(env.url, at(29.5)).attempted == 0
        assert mail.messages == []
        (alert,) = rows(env.url, "select * from app.alerts")
        assert alert["suppressed_by"] == f"silence:{silence_id}"

        after = env.tick(30.5, rules=only)  # past ends_at: no expire_silence call
        assert after.dispatch.notified == [alert["id"]]
        assert deliver(env.url, at(30.5)).sent
        assert len(mail.messages) == 1
        assert "Customer 21 is at critical churn risk" in mail.messages[0]["Subject"]
        set_health(env.url, (22, 91.0, "critical"))
        assert len(env.tick(32, rules=only).dispatch.notified) == 1
    (silence,) = rows(env.url, "select ends_at, expired_by from app.silences")
    assert (silence["ends_at"], silence["expired_by"]) == (at(30), None)
    assert rows(env.url, "select suppressed_by from app.alerts where entity_id = 21") == [
        {"suppressed_by": None}
    ]


def test_resolved_notices_go_only_to_the_channels_configured(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPSDASH_SEND_RESOLVED=slack: the alert itself goes to email and Slack, its resolution
    only to Slack."""
    monkeypatch.setenv("OPSDASH_SEND_RESOLVED", "slack")
    reset_settings()
    only = [env.rule("customer_critical")]
    env.tick(0, rules=only)
    set_health(env.url, (31, 95.0, "critical"))
    env.tick(1, rules=only)
    set_health(env.url, (31, 20.0, "low"))
    cleared = env.tick(2, rules=only)
    assert len(cleared.outcomes[0].resolved) == 1
    with smtp_sink(env.smtp_port) as mail:
        assert len(deliver(env.url).sent) == 3
        assert [m["Subject"] for m in mail.messages] == [
            "[opsdash] CRITICAL: Customer 31 is at critical churn risk"
        ]
    assert [(o["kind"], o["channel"]) for o in outbox(env.url)] == [
        ("alert", "email"),
        ("alert", "slack"),
        ("resolved", "slack"),
    ]
    assert len(env.hooks.payloads) == 2
    assert "Resolved: Customer 31" in str(env.hooks.payloads[1])


def test_an_engine_tick_publishes_alert_created_and_updated(env: Env) -> None:
    """The live events a tick publishes after its commits, read back from the Redis Stream."""
    only = [env.rule("customer_critical")]
    env.tick(0, rules=only)
    before = events.latest_id()
    set_health(env.url, (41, 96.0, "critical"))
    opened = env.tick(1, rules=only).outcomes[0].opened
    set_health(env.url, (41, 30.0, "medium"))
    env.tick(2, rules=only)
    published = [
        (e.type, e.data["id"], e.data["status"], e.data["rule"])
        for e in events.read_since(before, count=1000)
        if e.type.startswith("alert_")
    ]
    assert published == [
        ("alert_created", opened[0], "open", "customer_critical"),
        ("alert_updated", opened[0], "resolved", "customer_critical"),
    ]


def test_stale_sessions_inhibit_business_alerts(env: Env) -> None:
    with connect(env.url) as conn:
        conn.execute(
            "insert into raw.sessions (id, customer_id, tutor_id, subject_id, scheduled_at,"
            " duration_minutes, status, is_first_session, created_at, updated_at, _ingested_at)"
            " values (1, 1, 1, 1, %(t)s, 60, 'completed', false, %(t)s, %(t)s, %(t)s)",
            {"t": at(-10)},
        )
    env.tick(0)  # baseline of both rules; sessions are fresh
    set_health(env.url, (21, 95.0, "critical"))
    pending = env.tick(25)  # stale since minute 20, pending for 5 minutes
    assert [o.pending for o in pending.outcomes] == [0, 1]
    assert [a["rule"] for a in rows(env.url, "select rule from app.alerts")] == [
        "customer_critical"
    ]
    assert len(pending.dispatch.notified) == 1
    set_health(env.url, (22, 96.0, "critical"))
    report = env.tick(31)
    stale = rows(env.url, "select * from app.alerts where rule = 'sessions_stale'")
    assert len(stale) == 1
    assert stale[0]["title"].startswith("No new sessions ingested for 41 min")
    (customer,) = rows(env.url, "select * from app.alerts where entity_id = 22")
    assert customer["suppressed_by"] == f"inhibited:{stale[0]['id']}"
    assert report.dispatch.notified == [stale[0]["id"]]
    notified = {i for o in outbox(env.url) for i in o["alert_ids"]}
    assert customer["id"] not in notified


def test_ack_stops_repeats_and_times_out_back_to_open(env: Env) -> None:
    only = [env.rule("customer_critical")]
    env.tick(0, rules=only)
    set_health(env.url, (31, 90.0, "critical"), (32, 91.0, "critical"))
    env.tick(1, rules=only)
    acked, other = (a["id"] for a in rows(env.url, "select id from app.alerts order by entity_id"))
    with connect(env.url) as conn:
        ops.acknowledge(conn, acked, OPERATOR, "on it")
    repeat = env.tick(1 + 4 * 60, rules=only)  # repeat_interval 4h; ack_timeout 2h
    assert repeat.dispatch.reopened == [acked]
    assert repeat.dispatch.repeated == [other]
    with connect(env.url) as conn:
        events = ops.alert_events(conn, acked)
    reopened = [e for e in events if e["kind"] == "reopened"]
    assert [(e["actor"], e["actor_type"], e["to_status"]) for e in reopened] == [
        ("automation", "automation", "open")
    ]
    assert repeat.dispatch.notified == [acked]  # open again: notified again
    subjects = [o["subject"] for o in outbox(env.url) if o["channel"] == "email"]
    assert any("Still open: Customer 32" in s for s in subjects)


def test_run_failures_raise_one_live_alert_per_job(env: Env) -> None:
    rule = load_rules(override=False).rule("dagster_run_failed")
    with connect(env.url) as conn:
        first = raise_event_alert(
            conn, rule, entity_key="dbt_build", title="t", details={"run_id": "a"}, now=at(0)
        )
        second = raise_event_alert(
            conn, rule, entity_key="dbt_build", title="t", details={"run_id": "b"}, now=at(1)
        )
        third = raise_event_alert(
            conn, rule, entity_key="dbt_build", title="t2", details={"run_id": "c"}, now=at(2)
        )
        conn.commit()
        history = [(e["kind"], e["note"]) for e in ops.alert_events(conn, first)]
    assert first == second == third
    (alert,) = rows(env.url, "select * from app.alerts")
    assert (alert["occurrences"], alert["details"]["run_id"], alert["title"]) == (3, "c", "t2")
    assert history == [("status", rule.description), ("occurrence", "was: t")]


def test_sensor_evaluates_on_new_materialization_and_records_the_heartbeat(env: Env) -> None:
    instance = dg.DagsterInstance.ephemeral()
    resources = {"warehouse": WarehouseResource(url=env.url)}
    set_health(env.url, (401, 91.0, "critical"))

    def tick(sensor: dg.SensorDefinition, cursor: str | None = None) -> Any:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        return sensor.evaluate_tick(context)

    with smtp_sink(env.smtp_port) as mail:
        idle = tick(customer_health_alert_sensor)
        assert "No new materialization" in (idle.skip_message or "")
        assert rows(env.url, "select 1 from app.alerts") == []

        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=CUSTOMER_HEALTH))
        fired = tick(customer_health_alert_sensor)
        assert fired.run_requests == []
        assert "customer_critical: 1 firing, 1 new, 0 resolved" in (fired.skip_message or "")
        assert "2 sent" in (fired.skip_message or "")
        assert fired.cursor is not None
        assert len(mail.messages) == 1
        assert len(env.hooks.payloads) == 1

        after = tick(customer_health_alert_sensor, cursor=fired.cursor)
        assert "No new materialization" in (after.skip_message or "")
        retry = tick(notification_outbox_sensor)
        assert retry.skip_message == "notifications: no pending notifications"
    with connect(env.url) as conn:
        age = sensor_heartbeat_age(conn)
    assert age is not None
    assert age < timedelta(minutes=1)


def test_failed_evaluation_does_not_advance_the_cursor(env: Env) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=CUSTOMER_HEALTH))
    missing_db = urlunsplit(urlsplit(env.url)._replace(path="/opsdash_no_such_database"))
    context = dg.build_sensor_context(
        instance=instance, resources={"warehouse": WarehouseResource(url=missing_db)}
    )
    with pytest.raises(psycopg.OperationalError):
        customer_health_alert_sensor.evaluate_tick(context)
    assert context.cursor is None

    set_health(env.url, (501, 90.0, "critical"))
    context = dg.build_sensor_context(
        instance=instance, resources={"warehouse": WarehouseResource(url=env.url)}
    )
    with smtp_sink(env.smtp_port):
        result = customer_health_alert_sensor.evaluate_tick(context)
    assert "1 new" in (result.skip_message or "")
    assert result.cursor is not None


def test_smtp_down_keeps_email_pending_until_the_sink_is_up(env: Env) -> None:
    with connect(env.url) as conn:  # a critical alert's two rows
        email_id = enqueue(conn, "email", "customer 301", "customer 301 is critical")
        slack_id = enqueue(conn, "slack", "customer 301", "customer 301 is critical")

    down = deliver(env.url)  # nothing listens on SMTP_PORT
    assert down.sent == [slack_id]
    assert down.retrying == [email_id]
    (row,) = rows(env.url, "select * from app.notification_outbox where id = %s", (email_id,))
    assert (row["status"], row["attempts"], row["sent_at"]) == ("pending", 1, None)
    assert "unreachable" in row["last_error"]
    assert "after 3 tries" in row["last_error"]

    assert deliver(env.url).attempted == 0  # backing off: not retried at once
    later = datetime.now(UTC) + timedelta(hours=1)
    with smtp_sink(env.smtp_port) as mail:
        up = deliver(env.url, now=later)
        assert up.sent == [email_id]
        assert deliver(env.url, now=later).attempted == 0
        assert len(mail.messages) == 1
        assert "customer 301" in mail.messages[0].get_body().get_content()  # type: ignore[union-attr]
    (row,) = rows(env.url, "select * from app.notification_outbox where id = %s", (email_id,))
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 2, None)
    assert len(env.hooks.payloads) == 1


def test_email_gives_up_by_age_not_by_count(env: Env) -> None:
    with connect(env.url) as conn:
        outbox_id = enqueue(conn, "email", "s", "b")
        conn.execute("update app.notification_outbox set attempts = 50 where id = %s", (outbox_id,))
    assert deliver(env.url).retrying == [outbox_id]  # 51 attempts, still young: keeps trying
    report = deliver(env.url, now=datetime.now(UTC) + timedelta(hours=25))
    assert report.failed == [outbox_id]
    (row,) = rows(env.url, "select status, attempts, given_up_at from app.notification_outbox")
    assert (row["status"], row["attempts"]) == ("given_up", 52)
    assert row["given_up_at"] is not None
    assert deliver(env.url, now=datetime.now(UTC) + timedelta(days=3)).attempted == 0


def test_unconfigured_channel_is_recorded_as_skipped(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_EMAIL_TO", "")
    reset_settings()
    with connect(env.url) as conn:
        outbox_id = enqueue(conn, "email", "s", "b")
    assert deliver(env.url).skipped == [outbox_id]
    (row,) = rows(env.url, "select status, last_error from app.notification_outbox")
    assert (row["status"], row["last_error"]) == ("failed", "skipped: ALERT_EMAIL_TO is empty")


def test_concurrent_deliverers_never_send_a_row_twice(env: Env) -> None:
    with connect(env.url) as conn:
        ids = [enqueue(conn, "email", f"message {i}", "b") for i in range(12)]
    with smtp_sink(env.smtp_port) as mail:
        reports: list[DeliveryReport] = []
        threads = [
            threading.Thread(target=lambda: reports.append(deliver(env.url))) for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(i for r in reports for i in r.sent) == ids
        assert sorted(m["Subject"] for m in mail.messages) == sorted(
            f"message {i}" for i in range(12)
        )


def test_run_failure_sensor_raises_a_pipeline_alert(env: Env) -> None:
    from orchestration.defs.alerting.sensors import run_failure_alert_sensor

    @dg.op
    def explode() -> None:
        raise RuntimeError("source database unreachable")

    @dg.job
    def nightly() -> None:
        explode()

    instance = dg.DagsterInstance.ephemeral()
    result = nightly.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=failure,
        resources={"warehouse": WarehouseResource(url=env.url)},
    ).for_run_failure()
    run_failure_alert_sensor(context)
    (alert,) = rows(env.url, "select * from app.alerts")
    assert (alert["rule"], alert["entity_type"], alert["title"]) == (
        "dagster_run_failed",
        "job",
        "Dagster run of nightly failed",
    )
    assert alert["details"]["run_id"] == result.run_id
    # the step's own words, not only "steps failed"
    assert alert["details"]["error"] == "explode: RuntimeError: source database unreachable"

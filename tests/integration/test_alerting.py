"""The customer_critical rule, the outbox and the sensors against a real PostgreSQL scratch
database (Alembic migrations applied), a real SMTP sink and a real webhook receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import psycopg
import pytest
from psycopg.rows import dict_row

from alerting.rules import EvaluationSummary, evaluate_customer_critical
from opsdash_core.db import connect
from opsdash_core.notify import DeliveryReport, deliver_pending, enqueue
from opsdash_core.settings import get_settings, reset_settings
from opsdash_stack.sinks import WebhookReceiver, free_port, smtp_sink, webhook_receiver
from orchestration.defs.alerting.sensors import (
    CUSTOMER_HEALTH,
    customer_critical_alert_sensor,
    notification_outbox_sensor,
)
from orchestration.defs.resources import WarehouseResource

pytestmark = pytest.mark.integration

# The dbt mart's columns the rule reads; the real model is built by dbt.
CUSTOMER_HEALTH_DDL = """
create schema if not exists marts;
create table marts.customer_health (
    customer_id bigint primary key,
    risk_score double precision not null,
    risk_tier text not null check (risk_tier in ('low', 'medium', 'high', 'critical')),
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


@dataclass
class Env:
    url: str
    smtp_port: int
    hooks: WebhookReceiver


@pytest.fixture
def env(warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """A migrated scratch warehouse with a hand-made customer_health, settings pointing at it,
    a free SMTP port (no server yet) and a running webhook receiver."""
    with connect(warehouse_url) as conn:
        conn.execute(CUSTOMER_HEALTH_DDL)
    smtp_port = free_port()
    with webhook_receiver(0) as hooks:
        monkeypatch.setenv("WAREHOUSE_URL", warehouse_url)
        monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("SMTP_PORT", str(smtp_port))
        monkeypatch.setenv("ALERT_EMAIL_TO", "ops@example.test")
        monkeypatch.setenv("SLACK_WEBHOOK_URL", hooks.url)
        reset_settings()
        yield Env(warehouse_url, smtp_port, hooks)
    reset_settings()


def set_health(url: str, *rows: tuple[int, float, str]) -> None:
    with connect(url) as conn, conn.cursor() as cur:
        cur.executemany(UPSERT_HEALTH, rows)


def evaluate(url: str) -> EvaluationSummary:
    with connect(url) as conn:
        return evaluate_customer_critical(conn)


def deliver(url: str, now: datetime | None = None) -> DeliveryReport:
    return deliver_pending(url, get_settings(), backoff_s=0.01, now=now)


def rows(url: str, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def test_new_critical_customer_alerts_once_and_notifies_once(env: Env) -> None:
    set_health(env.url, (101, 0.93, "critical"), (102, 0.61, "high"), (103, 0.05, "low"))
    with smtp_sink(env.smtp_port) as mail:
        summary = evaluate(env.url)
        assert (summary.new, summary.resolved, summary.still_open) == (1, 0, 1)
        assert len(summary.notification_ids) == 2
        report = deliver(env.url)
        assert sorted(report.sent) == sorted(summary.notification_ids)

        alerts = rows(env.url, "select * from app.alerts")
        assert len(alerts) == 1
        alert = alerts[0]
        assert (
            alert["rule"],
            alert["entity_type"],
            alert["entity_id"],
            alert["severity"],
            alert["status"],
            alert["dedupe_key"],
        ) == ("customer_critical", "customer", 101, "critical", "open", "customer_critical:101")
        assert alert["details"]["risk_score"] == 0.93
        assert alert["details"]["avg_rating_30d"] == 2.5
        events = rows(env.url, "select * from app.alert_events")
        assert [(e["alert_id"], e["from_status"], e["to_status"], e["actor"]) for e in events] == [
            (alert["id"], None, "open", "system")
        ]

        assert len(mail.messages) == 1
        body = mail.messages[0].get_body().get_content()  # type: ignore[union-attr]
        assert "customer 101" in body
        assert "customer 102" not in body
        assert mail.messages[0]["To"] == "ops@example.test"
        assert len(env.hooks.payloads) == 1
        assert "customer 101" in str(env.hooks.payloads[0]["blocks"])

        again = evaluate(env.url)
        assert (again.new, again.resolved, again.still_open) == (0, 0, 1)
        assert again.notification_ids == []
        assert deliver(env.url).attempted == 0
        assert len(mail.messages) == 1
        assert len(env.hooks.payloads) == 1
    outbox = rows(env.url, "select status, attempts, alert_ids from app.notification_outbox")
    assert [(o["status"], o["attempts"], o["alert_ids"]) for o in outbox] == [
        ("sent", 1, [alert["id"]])
    ] * 2
    assert len(rows(env.url, "select 1 from app.alerts")) == 1


def test_recovered_customer_alert_is_resolved(env: Env) -> None:
    set_health(env.url, (201, 0.9, "critical"), (202, 0.95, "critical"))
    evaluate(env.url)
    with connect(env.url) as conn:  # someone acknowledged 202 in the app
        conn.execute("update app.alerts set status = 'acknowledged' where entity_id = 202")

    set_health(env.url, (201, 0.4, "medium"), (202, 0.7, "high"))
    summary = evaluate(env.url)
    assert (summary.new, summary.resolved, summary.still_open) == (0, 2, 0)
    assert summary.notification_ids == []
    alerts = rows(env.url, "select entity_id, status, resolved_at from app.alerts order by 1")
    assert [(a["entity_id"], a["status"]) for a in alerts] == [(201, "resolved"), (202, "resolved")]
    assert all(a["resolved_at"] is not None for a in alerts)
    events = rows(
        env.url,
        "select a.entity_id, e.from_status, e.to_status from app.alert_events e "
        "join app.alerts a on a.id = e.alert_id where e.to_status = 'resolved' "
        "order by 1",
    )
    assert [(e["entity_id"], e["from_status"]) for e in events] == [
        (201, "open"),
        (202, "acknowledged"),
    ]
    assert evaluate(env.url).resolved == 0

    set_health(env.url, (201, 0.97, "critical"))  # relapse: a new live alert, a new summary
    relapse = evaluate(env.url)
    assert (relapse.new, relapse.still_open, len(relapse.notification_ids)) == (1, 1, 2)
    assert len(rows(env.url, "select 1 from app.alerts where entity_id = 201")) == 2


def test_smtp_down_keeps_email_pending_until_the_sink_is_up(env: Env) -> None:
    set_health(env.url, (301, 0.99, "critical"))
    summary = evaluate(env.url)
    email_id, slack_id = summary.notification_ids

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


def test_thousands_of_new_critical_customers_make_one_summary(env: Env) -> None:
    with connect(env.url) as conn:
        conn.execute(
            "insert into marts.customer_health (customer_id, risk_score, risk_tier) "
            "select i, i / 3000.0, 'critical' from generate_series(1, 3000) as i"
        )
    with smtp_sink(env.smtp_port) as mail:
        summary = evaluate(env.url)
        assert (summary.new, summary.still_open, len(summary.notification_ids)) == (3000, 3000, 2)
        assert len(deliver(env.url).sent) == 2
        assert len(mail.messages) == 1
    body = mail.messages[0].get_body().get_content()  # type: ignore[union-attr]
    assert mail.messages[0]["Subject"] == "[opsdash] 3,000 customers entered the critical risk tier"
    assert body.count("  - customer ") == 20
    assert "  - customer 3000: risk 1.00" in body
    assert "...and 2,980 more" in body
    assert len(env.hooks.payloads) == 1
    (row,) = rows(
        env.url,
        "select cardinality(alert_ids) as n from app.notification_outbox where channel = 'email'",
    )
    assert row["n"] == 3000
    assert len(rows(env.url, "select 1 from app.alert_events")) == 3000


def test_missing_mart_is_reported_not_raised(env: Env) -> None:
    with connect(env.url) as conn:
        conn.execute("alter table marts.customer_health rename to customer_health_later")
        summary = evaluate_customer_critical(conn)
        conn.rollback()
    assert summary.skipped_reason == "marts.customer_health does not exist yet"
    assert (summary.new, summary.notification_ids) == (0, [])


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


def test_sensors_evaluate_on_new_materialization_only(env: Env) -> None:
    instance = dg.DagsterInstance.ephemeral()
    resources = {"warehouse": WarehouseResource(url=env.url)}
    set_health(env.url, (401, 0.91, "critical"))

    def tick(sensor: dg.SensorDefinition, cursor: str | None = None) -> Any:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        return sensor.evaluate_tick(context)

    with smtp_sink(env.smtp_port) as mail:
        idle = tick(customer_critical_alert_sensor)
        assert "No new materialization" in (idle.skip_message or "")
        assert rows(env.url, "select 1 from app.alerts") == []

        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=CUSTOMER_HEALTH))
        fired = tick(customer_critical_alert_sensor)
        assert fired.run_requests == []
        assert "1 new, 0 resolved, 1 open" in (fired.skip_message or "")
        assert "2 sent" in (fired.skip_message or "")
        assert fired.cursor is not None
        assert len(mail.messages) == 1
        assert len(env.hooks.payloads) == 1

        after = tick(customer_critical_alert_sensor, cursor=fired.cursor)
        assert "No new materialization" in (after.skip_message or "")

        retry = tick(notification_outbox_sensor)
        assert retry.skip_message == "notifications: no pending notifications"
    assert len(rows(env.url, "select 1 from app.alerts")) == 1


def test_failed_evaluation_does_not_advance_the_cursor(env: Env) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=CUSTOMER_HEALTH))
    missing_db = urlunsplit(urlsplit(env.url)._replace(path="/opsdash_no_such_database"))
    context = dg.build_sensor_context(
        instance=instance, resources={"warehouse": WarehouseResource(url=missing_db)}
    )
    with pytest.raises(psycopg.OperationalError):
        customer_critical_alert_sensor.evaluate_tick(context)
    assert context.cursor is None

    set_health(env.url, (501, 0.9, "critical"))
    context = dg.build_sensor_context(
        instance=instance, resources={"warehouse": WarehouseResource(url=env.url)}
    )
    with smtp_sink(env.smtp_port):
        result = customer_critical_alert_sensor.evaluate_tick(context)
    assert "1 new" in (result.skip_message or "")
    assert result.cursor is not None

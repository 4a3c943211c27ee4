"""Outbox delivery that loses nothing and sends nothing twice, against a real migrated warehouse,
the real SMTP sink and webhook receiver. Hours of outage run on a simulated clock (`now`)."""

from __future__ import annotations

import re
import ssl
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner
from psycopg.rows import dict_row

from opsdash_core import notify, watchdog
from opsdash_core.db import connect
from opsdash_core.migrate import upgrade as migrate_url
from opsdash_core.settings import Settings, get_settings, reset_settings
from opsdash_stack.cli import main as opsdash_cli
from opsdash_stack.sinks import WebhookReceiver, free_port, smtp_sink, webhook_receiver

pytestmark = pytest.mark.integration


@dataclass
class Env:
    url: str
    smtp_port: int
    hooks: WebhookReceiver

    @property
    def settings(self) -> Settings:
        return get_settings()


@pytest.fixture(scope="module")
def outbox_db(module_scratch_db: Callable[[str], str]) -> str:
    """One migrated scratch warehouse for the module (migrating costs more than the tests)."""
    url = module_scratch_db("wh")
    migrate_url(url)
    return url


@pytest.fixture
def env(outbox_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """The module's warehouse with empty outbox, rule state and audit log; settings pointing at
    it, a free SMTP port (no server yet) and a running webhook receiver."""
    warehouse_url = outbox_db
    with connect(warehouse_url) as conn:
        conn.execute(
            "truncate app.notification_outbox, app.alert_rule_state, app.audit_log"
            " restart identity cascade"
        )
    smtp_port = free_port()
    with webhook_receiver(0) as hooks:
        monkeypatch.setenv("WAREHOUSE_URL", warehouse_url)
        monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("SMTP_PORT", str(smtp_port))
        monkeypatch.setenv("ALERT_EMAIL_TO", "ops@example.test")
        monkeypatch.setenv("ALERT_EMAIL_FROM", "opsdash@ops.example.test")
        monkeypatch.setenv("SLACK_WEBHOOK_URL", hooks.url)
        monkeypatch.setenv("OPSDASH_APP_BASE_URL", "https://ops.example.test/")
        reset_settings()
        yield Env(warehouse_url, smtp_port, hooks)
    reset_settings()


def deliver(
    env: Env, now: datetime | None = None, target: Any = None, **kw: Any
) -> notify.DeliveryReport:
    kw.setdefault("tries", 1)
    return notify.deliver_pending(target or env.url, get_settings(), backoff_s=0, now=now, **kw)


def rows(url: str, query: str = "select * from app.notification_outbox order by id") -> list[Any]:
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query)
        return cur.fetchall()


def enqueue_emails(url: str, n: int) -> list[int]:
    with connect(url) as conn:
        return [notify.enqueue(conn, "email", f"message {i}", f"body {i}") for i in range(n)]


def test_routing_by_severity_with_deep_links(env: Env) -> None:
    with connect(env.url) as conn:
        slack = notify.slack_message("Customer 7 is critical", "risk 0.97")
        common: dict[str, Any] = {"kind": "alert", "body": "details", "slack": slack}
        critical = notify.enqueue_routed(
            conn, severity="critical", subject="crit", alert_ids=[7], **common
        )
        warning = notify.enqueue_routed(
            conn, severity="warning", subject="warn", alert_ids=[8, 9], **common
        )
        info = notify.enqueue_routed(
            conn, severity="info", subject="info", alert_ids=[10], link="/forecasts", **common
        )
    by_id = {r["id"]: r for r in rows(env.url)}
    assert [(by_id[i]["channel"], by_id[i]["status"]) for i in critical] == [
        ("email", "pending"),
        ("slack", "pending"),
    ]
    assert [(by_id[i]["channel"], by_id[i]["status"]) for i in warning] == [("slack", "pending")]
    assert [(by_id[i]["channel"], by_id[i]["status"]) for i in info] == [("email", "digest")]
    assert {by_id[i]["severity"] for i in critical} == {"critical"}
    assert "Open in opsdash: https://ops.example.test/alerts?alert=7" in by_id[critical[0]]["body"]
    assert "https://ops.example.test/alerts|Open in opsdash" in str(by_id[warning[0]]["payload"])
    assert "https://ops.example.test/forecasts" in by_id[info[0]]["body"]

    # Routing is configuration: warnings by email too, info nowhere.
    custom = Settings(
        WAREHOUSE_URL=env.url, OPSDASH_ROUTE_WARNING="email, slack", OPSDASH_ROUTE_INFO=""
    )
    with connect(env.url) as conn:
        custom_ids = notify.enqueue_routed(
            conn, severity="warning", settings=custom, subject="w", alert_ids=[], **common
        )
        assert len(custom_ids) == 2
        assert (
            notify.enqueue_routed(
                conn, severity="info", settings=custom, subject="i", alert_ids=[], **common
            )
            == []
        )
        with pytest.raises(ValueError, match="OPSDASH_ROUTE_INFO"):
            notify.enqueue_routed(
                conn,
                severity="info",
                settings=Settings(OPSDASH_ROUTE_INFO="pager"),
                subject="i",
                alert_ids=[],
                **common,
            )

    with smtp_sink(env.smtp_port) as mail:
        report = deliver(env)
    assert sorted(report.sent) == sorted(critical + warning + custom_ids)
    (email,) = [m for m in mail.messages if m["Subject"] == "crit"]
    stored = {r["id"]: r["message_id"] for r in rows(env.url)}
    assert re.fullmatch(
        rf"<opsdash-outbox-{critical[0]}\.\d+@ops\.example\.test>", email["Message-ID"]
    )
    assert email["Message-ID"] == stored[critical[0]]
    assert email["X-Opsdash-Outbox-Id"] == str(critical[0])
    first = env.hooks.payloads[0]
    assert first["metadata"]["event_payload"]["outbox_id"] == critical[1]
    assert first["blocks"][-1]["elements"][0]["text"] == f"opsdash notification #{critical[1]}"
    assert "https://ops.example.test/alerts?alert=7|Open in opsdash" in str(first["blocks"])
    headers = {k.lower(): v for k, v in env.hooks.headers[0].items()}
    assert headers["x-opsdash-outbox-id"] == str(critical[1])


def test_daily_digest_folds_info_notifications_into_one_email(env: Env) -> None:
    with connect(env.url) as conn:
        parked = [
            notify.enqueue_routed(
                conn,
                severity="info",
                kind="alert",
                subject=f"tutor {i} underperforming",
                body=f"no-show rate {i}0%",
                slack=None,
                alert_ids=[100 + i],
            )[0]
            for i in range(3)
        ]
    assert deliver(env).attempted == 0  # parked rows are not sent one by one
    with connect(env.url) as conn:
        digest_id = notify.build_daily_digest(conn)
        assert notify.build_daily_digest(conn) is None  # nothing left to fold
    assert digest_id is not None
    by_id = {r["id"]: r for r in rows(env.url)}
    assert {by_id[i]["status"] for i in parked} == {"folded"}
    assert {by_id[i]["digest_id"] for i in parked} == {digest_id}
    assert (by_id[digest_id]["kind"], by_id[digest_id]["alert_ids"]) == ("digest", [100, 101, 102])

    runner = CliRunner()
    assert "nothing waited" in runner.invoke(opsdash_cli, ["outbox", "digest"]).output
    with smtp_sink(env.smtp_port) as mail:
        delivered = runner.invoke(opsdash_cli, ["outbox", "deliver"])
        assert delivered.exit_code == 0, delivered.output
        assert "1 sent, 0 to retry" in delivered.output
    (msg,) = mail.messages
    assert "3 notifications" in msg["Subject"]
    body = cast(EmailMessage, msg).get_content()
    for i in range(3):
        assert f"tutor {i} underperforming" in body
        assert f"https://ops.example.test/alerts?alert={100 + i}" in body


def test_smtp_down_for_an_hour_then_back_delivers_each_message_once(env: Env) -> None:
    ids = enqueue_emails(env.url, 4)
    start = datetime.now(UTC)
    minute = timedelta(minutes=1)
    tries_while_down = 0
    with connect(env.url) as shared:  # one connection for the 50 passes (speed only)

        def one(m: int) -> notify.DeliveryReport:
            return deliver(env, now=start + m * minute, target=lambda: nullcontext(shared))

        for m in range(0, 40, 2):  # 40 minutes, a pass every 2: nothing listens on SMTP_PORT
            report = one(m)
            assert report.sent == []
            tries_while_down += report.attempted
        with smtp_sink(env.smtp_port) as mail:
            mail.reply_after_data = "451 4.3.0 relay busy, try later"  # 20 minutes: refused
            for m in range(40, 60, 2):
                assert one(m).sent == []
            mail.reply_after_data = None  # back
            for m in range(60, 100, 2):
                one(m)
    assert rows(env.url, "select * from app.notification_outbox where status <> 'sent'") == []
    with smtp_sink(env.smtp_port) as late:
        assert deliver(env, now=start + 200 * minute).attempted == 0
    assert late.received == []
    outbox = {r["id"]: r for r in rows(env.url)}
    assert set(outbox) == set(ids)
    # Backoff, not a try every minute: a handful of attempts per row over the hour.
    assert all(2 <= outbox[i]["attempts"] <= 9 for i in ids), [outbox[i]["attempts"] for i in ids]
    assert tries_while_down < 20 * len(ids)
    delivered = Counter(m["Message-ID"] for m in mail.messages)
    assert sorted(delivered) == sorted(outbox[i]["message_id"] for i in ids)
    assert set(delivered.values()) == {1}
    # Every try the relay saw (refused or not) carried its row's one Message-ID.
    seen = Counter(m["Message-ID"] for m in mail.received)
    assert set(seen) == set(delivered)
    assert max(seen.values()) >= 2
    assert {m["X-Opsdash-Outbox-Id"]: m["Message-ID"] for m in mail.received} == {
        str(i): outbox[i]["message_id"] for i in ids
    }


def test_error_after_data_counts_as_sent_and_is_not_resent(env: Env) -> None:
    (outbox_id,) = enqueue_emails(env.url, 1)
    with smtp_sink(env.smtp_port) as mail:
        mail.drop_after_data = True
        report = deliver(env, tries=3)
        mail.drop_after_data = False
        assert deliver(env, now=datetime.now(UTC) + timedelta(days=1)).attempted == 0
    assert report.sent == [outbox_id]
    assert len(mail.received) == 1  # no retry inside the attempt after DATA
    (row,) = rows(env.url)
    assert row["status"] == "sent"
    assert "outcome unknown" in row["last_error"]


def test_deliverer_killed_between_send_and_mark_duplicates_at_most_once(env: Env) -> None:
    enqueue_emails(env.url, 2)
    script = (
        "import os, sys\n"
        "from opsdash_core import notify\n"
        "notify.deliver_pending(sys.argv[1], after_send=lambda _id: os._exit(9))\n"
    )
    with smtp_sink(env.smtp_port) as mail:
        died = subprocess.run([sys.executable, "-c", script, env.url], check=False, timeout=60)
        assert died.returncode == 9
        assert len(mail.messages) == 1  # sent, then the process died before marking it
        stuck = rows(env.url, "select * from app.notification_outbox where status = 'sending'")
        assert len(stuck) == 1
        now = datetime.now(UTC)
        # The other row goes at once; the stuck one waits out its lease, then goes once more.
        assert deliver(env, now=now).sent == [stuck[0]["id"] + 1]
        assert deliver(env, now=now + timedelta(minutes=11)).sent == [stuck[0]["id"]]
        assert deliver(env, now=now + timedelta(hours=2)).attempted == 0
    copies = Counter(m["Message-ID"] for m in mail.messages)
    assert copies[stuck[0]["message_id"]] == 2
    assert sorted(copies.values()) == [1, 2]


def test_given_up_by_age_listed_and_requeued(env: Env) -> None:
    ids = enqueue_emails(env.url, 2)
    later = datetime.now(UTC) + timedelta(hours=25)
    assert sorted(deliver(env, now=later).failed + deliver(env, now=later).failed) == ids
    with connect(env.url) as conn:
        given_up = notify.given_up_notifications(conn)
    assert sorted(r["id"] for r in given_up) == ids
    assert all(r["status"] == "given_up" and r["given_up_at"] for r in given_up)
    assert all("given up" in r["last_error"] and "unreachable" in r["last_error"] for r in given_up)

    runner = CliRunner()
    listed = runner.invoke(opsdash_cli, ["outbox", "list", "--status", "given_up"])
    assert listed.exit_code == 0, listed.output
    assert "message 0" in listed.output
    assert "message 1" in listed.output
    assert runner.invoke(opsdash_cli, ["outbox", "requeue"]).exit_code == 2
    one = runner.invoke(opsdash_cli, ["outbox", "requeue", "--id", str(ids[0])])
    assert one.exit_code == 0, one.output
    missing = runner.invoke(opsdash_cli, ["outbox", "requeue", "--id", "999999"])
    assert missing.exit_code == 1
    assert "999999" in missing.output
    with smtp_sink(env.smtp_port) as mail:
        assert deliver(env, now=later).sent == [ids[0]]
        everything = runner.invoke(opsdash_cli, ["outbox", "requeue", "--all"])
        assert "requeued 1" in everything.output
        assert deliver(env, now=later).sent == [ids[1]]
    final = {r["id"]: r for r in rows(env.url)}
    assert [final[i]["status"] for i in ids] == ["sent", "sent"]
    assert [m["Message-ID"] for m in mail.messages] == [final[i]["message_id"] for i in ids]
    audit = rows(env.url, "select username, action, details from app.audit_log order by id")
    assert [(a["username"], a["action"]) for a in audit] == [("cli", "outbox_requeue")] * 2


def test_slack_outage_backs_off_and_carries_the_outbox_id(env: Env) -> None:
    with connect(env.url) as conn:
        outbox_id = notify.enqueue(conn, "slack", "s", "b", payload={"text": "hello"})
    env.hooks.fail_status = 503
    assert deliver(env).retrying == [outbox_id]
    assert deliver(env).attempted == 0  # backing off
    env.hooks.fail_status = None
    assert deliver(env, now=datetime.now(UTC) + timedelta(hours=1)).sent == [outbox_id]
    (payload,) = env.hooks.payloads
    assert payload["text"] == f"hello\n_opsdash notification #{outbox_id}_"
    assert payload["metadata"]["event_payload"]["outbox_id"] == outbox_id


# --- the watchdog: outside Dagster, one email per stale episode -------------------------------


def set_sensor_tick(url: str, at: datetime) -> None:
    with connect(url) as conn:
        conn.execute(
            "insert into app.alert_rule_state (rule, last_success_at) values ('__sensors__', %s)"
            " on conflict (rule) do update set last_success_at = excluded.last_success_at",
            (at,),
        )


def watch(env: Env, now: datetime) -> watchdog.WatchdogResult:
    with connect(env.url) as conn:
        return watchdog.check_sensors(conn, get_settings(), now=now)


def test_watchdog_emails_once_per_stale_episode_and_on_recovery(env: Env) -> None:
    t0 = datetime.now(UTC) - timedelta(minutes=400)  # the last check runs on the real clock
    minute = timedelta(minutes=1)
    with smtp_sink(env.smtp_port) as mail:
        # No tick recorded yet: nothing is known, nothing is sent.
        assert watch(env, t0 + 60 * minute).health.state == "unknown"
        set_sensor_tick(env.url, t0)
        assert watch(env, t0 + 9 * minute).action is None
        assert watch(env, t0 + 11 * minute).action == "alerted"
        for m in (12, 30, 300):  # still stale: no second email, also not from a restart
            assert watch(env, t0 + m * minute).action is None
        assert len(mail.messages) == 1
        assert "no alert-sensor tick for 11 min" in mail.messages[0]["Subject"]

        set_sensor_tick(env.url, t0 + 301 * minute)  # the sensors tick again
        assert watch(env, t0 + 302 * minute).action == "recovered"
        assert watch(env, t0 + 303 * minute).action is None
        assert [m["Subject"] for m in mail.messages][1] == "[opsdash] Alerting is running again"

    # A new episode while the relay is down: no email is recorded as sent, so the next check
    # (relay back) sends it, once.
    with pytest.raises(notify.NotificationError):
        watch(env, t0 + 320 * minute)
    with smtp_sink(env.smtp_port) as mail:
        assert watch(env, t0 + 321 * minute).action == "alerted"
        assert watch(env, t0 + 322 * minute).action is None
        result = CliRunner().invoke(opsdash_cli, ["watchdog", "--once"])  # a restart, now
        assert result.exit_code == 0, result.output
        assert "alert sensors: stale" in result.output
        assert "email sent" not in result.output
    assert len(mail.messages) == 1
    assert mail.messages[0]["Message-ID"].startswith("<opsdash-watchdog-")


# --- SMTP with TLS and login ------------------------------------------------------------------


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (IP SAN), so that the sender verifies it like a real one."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_smtp_over_tls_with_login(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, security: str
) -> None:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = self_signed_cert(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(*args: Any) -> AuthResult:
        login = args[-1]
        assert isinstance(login, LoginPassword)
        logins.append((login.login, login.password))
        return AuthResult(success=(login.login, login.password) == (b"opsdash", b"s3cret"))

    tls: dict[str, Any] = (
        {"tls_context": server_tls, "require_starttls": True, "auth_require_tls": True}
        if security == "starttls"
        else {"ssl_context": server_tls, "auth_require_tls": False}
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the sender trusts only this certificate
    monkeypatch.setenv("SMTP_SECURITY", security)
    monkeypatch.setenv("SMTP_USERNAME", "opsdash")
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    reset_settings()
    ids = enqueue_emails(env.url, 2)
    with smtp_sink(env.smtp_port, authenticator=authenticator, **tls) as mail:
        assert deliver(env).sent == ids
    assert [m["Subject"] for m in mail.messages] == ["message 0", "message 1"]
    assert logins == [(b"opsdash", b"s3cret")] * 2

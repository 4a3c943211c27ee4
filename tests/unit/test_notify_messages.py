"""Message shapes, skip rules and retry behaviour of opsdash_core.notify, without any server."""

from __future__ import annotations

import smtplib
from typing import Any

import httpx
import pytest

from opsdash_core import notify
from opsdash_core.settings import Settings


def _settings(**env: Any) -> Settings:
    base = {
        "SMTP_PORT": 2525,
        "ALERT_EMAIL_TO": "a@example.test, b@example.test",
        "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/slack/x",
    }
    return Settings(**{**base, **env})  # type: ignore[arg-type]


def test_recipients_are_split_and_blanks_ignored() -> None:
    assert notify.recipients(_settings(ALERT_EMAIL_TO=" a@x.test,, b@y.test ,")) == [
        "a@x.test",
        "b@y.test",
    ]
    assert notify.recipients(_settings(ALERT_EMAIL_TO="")) == []


def test_build_email_headers() -> None:
    msg = notify.build_email(_settings(), "Subject 1", "line one\nline two")
    assert msg["To"] == "a@example.test, b@example.test"
    assert msg["From"] == "opsdash@localhost"
    assert msg["Subject"] == "Subject 1"
    assert msg["Message-ID"]
    assert "line two" in msg.get_content()


def test_slack_message_is_block_kit_with_fallback_text() -> None:
    payload = notify.slack_message("Title", "summary", ["one", "two"], "more")
    assert payload["text"] == "Title: summary"
    kinds = [b["type"] for b in payload["blocks"]]
    assert kinds == ["header", "section", "section", "context"]
    assert payload["blocks"][2]["text"]["text"] == "• one\n• two"


def test_slack_message_caps_section_length() -> None:
    payload = notify.slack_message("T" * 500, "s", [f"line {i}" * 20 for i in range(500)])
    assert len(payload["blocks"][0]["text"]["text"]) == 150
    assert all(len(b["text"]["text"]) <= 3000 for b in payload["blocks"] if "text" in b)


def test_unconfigured_channels_are_skipped_without_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("no network call expected")

    monkeypatch.setattr(smtplib, "SMTP", boom)
    monkeypatch.setattr(httpx, "post", boom)
    settings = _settings(ALERT_EMAIL_TO="", SLACK_WEBHOOK_URL="")
    assert notify.send_email(settings, "s", "b") is False
    assert notify.send_slack(settings, {"text": "x"}) is False
    assert notify.skip_reason(settings, "email") == "ALERT_EMAIL_TO is empty"
    assert notify.skip_reason(_settings(), "slack") is None


class _FlakySmtp:
    """Refuses the connection `failures` times, then accepts."""

    failures = 0
    calls = 0
    sent: list[object] = []

    def __init__(self, host: str, port: int, timeout: float) -> None:
        type(self).calls += 1
        if type(self).calls <= type(self).failures:
            raise ConnectionRefusedError(111, "Connection refused")

    def ehlo_or_helo_if_needed(self) -> None:
        return None

    def mail(self, sender: str) -> tuple[int, bytes]:
        return 250, b"ok"

    def rcpt(self, rcpt: str) -> tuple[int, bytes]:
        return 250, b"ok"

    def docmd(self, cmd: str) -> tuple[int, bytes]:
        assert cmd == "data"
        return 354, b"go ahead"

    def send(self, data: bytes) -> None:
        type(self).sent.append(data)

    def getreply(self) -> tuple[int, bytes]:
        return 250, b"queued"

    def quit(self) -> None:
        return None

    def close(self) -> None:
        return None


@pytest.fixture
def flaky_smtp(monkeypatch: pytest.MonkeyPatch) -> type[_FlakySmtp]:
    _FlakySmtp.failures, _FlakySmtp.calls, _FlakySmtp.sent = 0, 0, []
    monkeypatch.setattr(smtplib, "SMTP", _FlakySmtp)
    monkeypatch.setattr(notify.time, "sleep", lambda _s: None)
    return _FlakySmtp


def test_email_retries_transient_failures(flaky_smtp: type[_FlakySmtp]) -> None:
    flaky_smtp.failures = 2
    assert notify.send_email(_settings(), "s", "b") is True
    assert flaky_smtp.calls == 3
    assert len(flaky_smtp.sent) == 1


def test_email_gives_up_after_three_tries(flaky_smtp: type[_FlakySmtp]) -> None:
    flaky_smtp.failures = 10
    with pytest.raises(notify.NotificationError, match=r"after 3 tries.*unreachable") as err:
        notify.send_email(_settings(), "s", "b")
    assert err.value.transient
    assert flaky_smtp.calls == 3


def test_backoff_doubles(monkeypatch: pytest.MonkeyPatch, flaky_smtp: type[_FlakySmtp]) -> None:
    waits: list[float] = []
    monkeypatch.setattr(notify.time, "sleep", waits.append)
    flaky_smtp.failures = 10
    with pytest.raises(notify.NotificationError):
        notify.send_email(_settings(), "s", "b", tries=4, backoff_s=0.5)
    assert waits == [0.5, 1.0, 2.0]


def test_permanent_smtp_refusal_is_not_retried(
    monkeypatch: pytest.MonkeyPatch, flaky_smtp: type[_FlakySmtp]
) -> None:
    calls: list[int] = []

    class Refusing(_FlakySmtp):
        def getreply(self) -> tuple[int, bytes]:
            calls.append(1)
            return 554, b"rejected"

    monkeypatch.setattr(smtplib, "SMTP", Refusing)
    with pytest.raises(notify.NotificationError, match=r"after 1 try.*554") as err:
        notify.send_email(_settings(), "s", "b")
    assert not err.value.transient
    assert calls == [1]


@pytest.mark.parametrize(
    ("status", "transient", "calls"), [(503, True, 3), (429, True, 3), (404, False, 1)]
)
def test_slack_status_codes(
    monkeypatch: pytest.MonkeyPatch, status: int, transient: bool, calls: int
) -> None:
    seen: list[dict[str, Any]] = []

    def fake_post(url: str, json: dict[str, Any], **_k: object) -> httpx.Response:
        seen.append(json)
        return httpx.Response(status, text="nope")

    monkeypatch.setattr(httpx, "post", fake_post)
    monkeypatch.setattr(notify.time, "sleep", lambda _s: None)
    with pytest.raises(notify.NotificationError, match=str(status)) as err:
        notify.send_slack(_settings(), {"text": "x"})
    assert err.value.transient is transient
    assert len(seen) == calls


def test_slack_connection_error_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_post(url: str, **_k: object) -> httpx.Response:
        raise httpx.ConnectError("refused")

    monkeypatch.setattr(httpx, "post", fake_post)
    monkeypatch.setattr(notify.time, "sleep", lambda _s: None)
    with pytest.raises(notify.NotificationError, match="unreachable") as err:
        notify.send_slack(_settings(), {"text": "x"})
    assert err.value.transient


def test_delivery_report_summary() -> None:
    assert notify.DeliveryReport().summary() == "no pending notifications"
    report = notify.DeliveryReport(sent=[1, 2], retrying=[3], out_of_time=True)
    assert report.attempted == 3
    assert report.summary().startswith("2 sent, 1 to retry, 0 failed, 0 skipped")
    assert "time budget" in report.summary()


def test_enqueue_rejects_unknown_channel() -> None:
    with pytest.raises(ValueError, match="unknown channel"):
        notify.enqueue(None, "pager", "s", "b")  # type: ignore[arg-type]


def test_retry_delay_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    low = [notify.retry_delay(n, 1800, rand=0.0) for n in range(1, 10)]
    high = [notify.retry_delay(n, 1800, rand=1.0) for n in range(1, 10)]
    assert high[:7] == [30, 60, 120, 240, 480, 960, 1800]
    assert high[7:] == [1800, 1800]
    assert low[:3] == [15, 30, 60]  # jitter: between half and all of the step
    assert max(notify.retry_delay(50, 1800) for _ in range(200)) <= 1800


def test_route_by_severity_defaults_and_overrides() -> None:
    s = _settings()
    assert notify.route("critical", s) == ["email", "slack"]
    assert notify.route("warning", s) == ["slack"]
    assert notify.route("info", s) == ["digest"]
    custom = _settings(OPSDASH_ROUTE_WARNING=" Slack, email,slack ", OPSDASH_ROUTE_INFO="")
    assert notify.route("warning", custom) == ["slack", "email"]
    assert notify.route("info", custom) == []
    with pytest.raises(ValueError, match="OPSDASH_ROUTE_CRITICAL"):
        notify.route("critical", _settings(OPSDASH_ROUTE_CRITICAL="pager"))
    with pytest.raises(ValueError, match="unknown severity"):
        notify.route("fatal", s)


def test_resolved_notices_go_only_to_the_channels_that_want_them() -> None:
    both = _settings(OPSDASH_ROUTE_INFO="digest,slack")
    assert notify.route_kind("critical", "resolved", both) == ["email", "slack"]
    slack_only = _settings(OPSDASH_SEND_RESOLVED=" Slack ", OPSDASH_ROUTE_INFO="digest,slack")
    assert notify.route_kind("critical", "resolved", slack_only) == ["slack"]
    assert notify.route_kind("info", "resolved", slack_only) == ["slack"]  # the digest is email
    # Only resolved notices are filtered: new alerts and repeats still go everywhere routed.
    assert notify.route_kind("critical", "alert", slack_only) == ["email", "slack"]
    assert notify.route_kind("critical", "repeat", slack_only) == ["email", "slack"]
    email_only = _settings(OPSDASH_SEND_RESOLVED="email")
    assert notify.route_kind("critical", "resolved", email_only) == ["email"]
    assert notify.route_kind("warning", "resolved", email_only) == []
    assert notify.route_kind("critical", "resolved", _settings(OPSDASH_SEND_RESOLVED="")) == []
    with pytest.raises(ValueError, match="OPSDASH_SEND_RESOLVED"):
        notify.route_kind("critical", "resolved", _settings(OPSDASH_SEND_RESOLVED="pager"))


def test_app_base_url_defaults_to_the_local_app() -> None:
    assert _settings(STREAMLIT_PORT=8601).app_base_url == "http://127.0.0.1:8601"
    s = _settings(OPSDASH_APP_BASE_URL="https://ops.example.test/")
    assert notify.alert_link(42, s) == "https://ops.example.test/alerts?alert=42"


def test_outbox_message_id_is_stable_per_row() -> None:
    from datetime import UTC, datetime

    created = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    s = _settings(ALERT_EMAIL_FROM="Ops <opsdash@ops.example.test>")
    mid = notify.outbox_message_id(7, created, s)
    assert mid == f"<opsdash-outbox-7.{int(created.timestamp())}@ops.example.test>"
    assert notify.outbox_message_id(7, created, s) == mid
    msg = notify.build_email(s, "s", "b", message_id=mid, headers={"X-Opsdash-Outbox-Id": "7"})
    assert (msg["Message-ID"], msg["X-Opsdash-Outbox-Id"]) == (mid, "7")


def test_slack_payload_carries_outbox_id_and_link() -> None:
    payload = notify.with_link(notify.slack_message("T", "s"), "https://x.test/alerts?alert=1")
    tagged = notify.tag_slack_payload(payload, 12, "<m@x>")
    assert tagged["metadata"]["event_payload"] == {"outbox_id": 12, "message_id": "<m@x>"}
    assert tagged["blocks"][-2]["text"]["text"] == "<https://x.test/alerts?alert=1|Open in opsdash>"
    assert tagged["blocks"][-1]["elements"][0]["text"] == "opsdash notification #12"
    assert "metadata" not in payload  # the stored payload is not changed


def test_message_bytes_double_leading_dots() -> None:
    msg = notify.build_email(_settings(), "s", "first\n.hidden line\nlast")
    raw = notify._message_bytes(msg)
    assert b"\r\n..hidden line\r\n" in raw
    assert raw.endswith(b"\r\n.\r\n")


def test_error_after_data_is_not_retried_within_the_attempt(
    monkeypatch: pytest.MonkeyPatch, flaky_smtp: type[_FlakySmtp]
) -> None:
    class Busy(_FlakySmtp):
        def getreply(self) -> tuple[int, bytes]:
            return 451, b"try later"

    monkeypatch.setattr(smtplib, "SMTP", Busy)
    with pytest.raises(notify.NotificationError, match=r"after 1 try.*451") as err:
        notify.send_email(_settings(), "s", "b")
    assert err.value.transient
    assert len(Busy.sent) == 1


def test_refused_login_is_permanent(
    monkeypatch: pytest.MonkeyPatch, flaky_smtp: type[_FlakySmtp]
) -> None:
    logins: list[tuple[str, str]] = []

    class Locked(_FlakySmtp):
        def login(self, user: str, password: str) -> None:
            logins.append((user, password))
            raise smtplib.SMTPAuthenticationError(535, b"bad credentials")

    monkeypatch.setattr(smtplib, "SMTP", Locked)
    settings = _settings(SMTP_USERNAME="opsdash", SMTP_PASSWORD="wrong")
    with pytest.raises(notify.NotificationError, match="login refused") as err:
        notify.send_email(settings, "s", "b")
    assert not err.value.transient
    assert logins == [("opsdash", "wrong")]
    assert Locked.sent == []

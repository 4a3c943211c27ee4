"""The local SMTP sink and webhook receiver, driven by the real senders in opsdash_core.notify."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from opsdash_core import notify
from opsdash_core.settings import Settings
from opsdash_stack.sinks import free_port, smtp_sink, webhook_receiver

pytestmark = pytest.mark.integration


def _settings(smtp_port: int, webhook_url: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=smtp_port,
        ALERT_EMAIL_TO="ops@example.test, cs@example.test",
        SLACK_WEBHOOK_URL=webhook_url,
    )


def test_email_and_slack_reach_the_sinks(tmp_path: Path) -> None:
    port = free_port()
    with (
        smtp_sink(port, tmp_path / "mail") as mail,
        webhook_receiver(0, tmp_path / "slack") as hooks,
    ):
        settings = _settings(port, hooks.url)
        assert notify.send_email(settings, "Subject ü", "Customer 42 needs a call.")
        assert notify.send_slack(settings, notify.slack_message("Title", "Customer 42"))
        assert mail.wait_for(1)
        assert hooks.wait_for(1)

    msg = mail.messages[0]
    assert msg["Subject"] == "Subject ü"
    assert "Customer 42 needs a call." in msg.get_body().get_content()  # type: ignore[union-attr]
    assert mail.envelopes[0]["rcpt_tos"] == ["ops@example.test", "cs@example.test"]
    assert hooks.payloads[0]["text"] == "Title: Customer 42"
    assert hooks.paths == ["/slack/opsdash"]
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
    assert len(list((tmp_path / "slack").glob("*.json"))) == 1


def test_webhook_receiver_routes() -> None:
    with webhook_receiver(0) as hooks:
        base = f"http://127.0.0.1:{hooks.port}"
        assert httpx.get(f"{base}/health").status_code == 200
        assert httpx.post(f"{base}/slack/T0/B0/xyz", json={"text": "hi"}).status_code == 200
        assert httpx.post(f"{base}/elsewhere", json={}).status_code == 404
        assert httpx.post(f"{base}/slack/x", content=b"not json").status_code == 400
        assert httpx.post(f"{base}/slack/x", json=[1, 2]).status_code == 400
    assert hooks.payloads == [{"text": "hi"}]


def test_sinks_command_runs_until_sigterm(tmp_path: Path) -> None:
    smtp_port, http_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from opsdash_stack.sinks import sinks; sinks()",
            "--smtp-port",
            str(smtp_port),
            "--http-port",
            str(http_port),
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "sinks did not come up"
            time.sleep(0.1)
        settings = _settings(smtp_port, f"http://127.0.0.1:{http_port}/slack/alerts")
        notify.send_email(settings, "hello", "body")
        notify.send_slack(settings, {"text": "hello"})
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
    assert [p.read_text() for p in (tmp_path / "slack").glob("*.json")] == ['{"text":"hello"}']

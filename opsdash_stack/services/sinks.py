"""The local mail and webhook sinks (`opsdash sinks`) as a background service."""

from __future__ import annotations

from opsdash_core.settings import Settings
from opsdash_stack.supervisor import Service, venv_bin


def wanted(s: Settings) -> bool:
    """Only while alerts point at loopback stand-ins: real targets need no local sink."""
    return s.slack_webhook_url.startswith("http://127.0.0.1") and s.smtp_host == "127.0.0.1"


def service(s: Settings) -> Service:
    """Local stand-ins for the mail relay and Slack, used while no real ones are configured."""
    port = s.sink_http_port
    return Service(
        "sinks",
        [
            venv_bin("opsdash"),
            "sinks",
            "--smtp-port",
            str(s.smtp_port),
            "--http-port",
            str(port),
            "--dir",
            str(s.opsdash_home / "outbox"),
        ],
        None,
        f"http://127.0.0.1:{port}/health",
        30,
    )

"""Local stand-ins for the notification targets: an SMTP sink and a Slack-style webhook receiver.

`make up` runs them (`opsdash sinks`) when SMTP_HOST and SLACK_WEBHOOK_URL point at 127.0.0.1,
so a fresh machine sees real emails (`.eml` files) and real webhook bodies (`.json` files)
without any outside account. Tests use the in-process context managers `smtp_sink()` and
`webhook_receiver()`. Both bind to 127.0.0.1 only and never forward anything.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import click

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8025


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for tests)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _file_name(suffix: str) -> str:
    """Sortable by arrival, unique across threads and processes."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{time.time_ns() % 10**9:09d}-{uuid.uuid4().hex[:8]}{suffix}"


def _wait(items: list[Any], count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while len(items) < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# --- SMTP ------------------------------------------------------------------------------------


@dataclass
class SmtpSink:
    """Messages received so far (when kept in memory) and where they are written."""

    port: int
    directory: Path | None = None
    keep_in_memory: bool = True
    messages: list[Message] = field(default_factory=list)
    envelopes: list[dict[str, Any]] = field(default_factory=list)
    # Faults for tests of the sender: every transmitted message lands in `received`; with
    # `reply_after_data` set (e.g. "451 4.3.0 try later") it is refused with that reply, with
    # `drop_after_data` the connection closes without any reply (the sender cannot know).
    received: list[Message] = field(default_factory=list)
    reply_after_data: str | None = None
    drop_after_data: bool = False

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """True once at least `count` messages arrived (False after `timeout` seconds)."""
        return _wait(self.messages, count, timeout)

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, _session: object, envelope: Any
    ) -> str:
        """aiosmtpd hook: called once per transmitted message."""
        raw: bytes = envelope.original_content or envelope.content
        if self.keep_in_memory:
            self.received.append(email.message_from_bytes(raw, policy=email.policy.default))
        if self.drop_after_data:
            server.transport.abort()
            return "421 connection dropped by the test sink"
        if self.reply_after_data:
            return self.reply_after_data
        if self.directory is not None:
            (self.directory / _file_name(".eml")).write_bytes(raw)
        if self.keep_in_memory:
            self.envelopes.append({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos})
            self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))
        log.info("smtp sink: message from %s to %s", envelope.mail_from, envelope.rcpt_tos)
        return "250 Message accepted for delivery"


@contextmanager
def smtp_sink(
    port: int, directory: Path | None = None, *, keep_in_memory: bool = True, **controller: Any
) -> Iterator[SmtpSink]:
    """An SMTP server on 127.0.0.1:`port` in a background thread, stopped on exit.

    `controller` goes to aiosmtpd's Controller (tests: `tls_context`/`require_starttls`,
    `ssl_context` for implicit TLS, `authenticator`)."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError as exc:  # aiosmtpd is a development dependency
        raise RuntimeError(
            "the SMTP sink needs aiosmtpd (`uv sync` installs the dev group)"
        ) from exc

    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    sink = SmtpSink(port=port, directory=directory, keep_in_memory=keep_in_memory)
    server = Controller(sink, hostname=HOST, port=port, **controller)
    server.start()
    try:
        yield sink
    finally:
        server.stop()


# --- webhook ---------------------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    """JSON bodies POSTed to /slack/<anything> so far (when kept in memory)."""

    port: int
    directory: Path | None = None
    keep_in_memory: bool = True
    payloads: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    # A fault for tests of the sender: answer this status (e.g. 503) without recording.
    fail_status: int | None = None

    @property
    def url(self) -> str:
        """A webhook URL pointing at this receiver."""
        return f"http://{HOST}:{self.port}/slack/opsdash"

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """True once at least `count` payloads arrived (False after `timeout` seconds)."""
        return _wait(self.payloads, count, timeout)

    def record(
        self, path: str, payload: dict[str, Any], raw: bytes, headers: dict[str, str] | None = None
    ) -> None:
        if self.directory is not None:
            (self.directory / _file_name(".json")).write_bytes(raw)
        if self.keep_in_memory:
            self.paths.append(path)
            self.headers.append(headers or {})
            self.payloads.append(payload)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self, status: HTTPStatus, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/health":
            self._answer(HTTPStatus.OK, "ok")
        else:
            self._answer(HTTPStatus.NOT_FOUND, "not found")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if not path.startswith("/slack/"):
            self._answer(HTTPStatus.NOT_FOUND, "not found")
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload = json.loads(raw)
        except ValueError:
            self._answer(HTTPStatus.BAD_REQUEST, "invalid_payload")
            return
        if not isinstance(payload, dict):
            self._answer(HTTPStatus.BAD_REQUEST, "invalid_payload")
            return
        receiver = self.server.receiver
        if receiver.fail_status is not None:
            self._answer(HTTPStatus(receiver.fail_status), "unavailable")
            return
        receiver.record(path, payload, raw, dict(self.headers.items()))
        self._answer(HTTPStatus.OK, "ok")  # what Slack's incoming webhooks answer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("webhook receiver: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: WebhookReceiver) -> None:
        super().__init__((HOST, receiver.port), _Handler)
        self.receiver = receiver


@contextmanager
def webhook_receiver(
    port: int, directory: Path | None = None, *, keep_in_memory: bool = True
) -> Iterator[WebhookReceiver]:
    """An HTTP server on 127.0.0.1:`port` (0 = any free port) in a background thread."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    receiver = WebhookReceiver(port=port, directory=directory, keep_in_memory=keep_in_memory)
    server = _Server(receiver)
    receiver.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- long-running process --------------------------------------------------------------------


def run_sinks(mail_dir: Path, hook_dir: Path, smtp_port: int, http_port: int) -> None:
    """Run both sinks until SIGTERM or SIGINT; messages and payloads go to files only."""
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("sinks: signal %d, stopping", signum)
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with (
            smtp_sink(smtp_port, mail_dir, keep_in_memory=False),
            webhook_receiver(http_port, hook_dir, keep_in_memory=False) as hooks,
        ):
            log.info(
                "SMTP sink on %s:%d -> %s; webhook receiver on %s:%d -> %s",
                HOST,
                smtp_port,
                mail_dir,
                HOST,
                hooks.port,
                hook_dir,
            )
            while not stop.wait(1.0):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _default_http_port() -> int:
    """The port of SLACK_WEBHOOK_URL when it points here, so the defaults agree."""
    from opsdash_core.settings import get_settings

    parts = urlsplit(get_settings().slack_webhook_url)
    if parts.hostname in (HOST, "localhost") and parts.port:
        return parts.port
    return DEFAULT_HTTP_PORT


@click.command("sinks")
@click.option("--smtp-port", type=int, default=None, help="SMTP port [default: SMTP_PORT].")
@click.option(
    "--http-port",
    type=int,
    default=None,
    help=f"Webhook port [default: SLACK_WEBHOOK_URL's port, else {DEFAULT_HTTP_PORT}].",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where mail/ and slack/ are written [default: OPSDASH_HOME/outbox].",
)
def sinks(smtp_port: int | None, http_port: int | None, directory: Path | None) -> None:
    """Run the local SMTP sink and Slack webhook receiver (development stand-ins)."""
    from opsdash_core.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    s = get_settings()
    base = directory or s.opsdash_home / "outbox"
    run_sinks(
        base / "mail", base / "slack", smtp_port or s.smtp_port, http_port or _default_http_port()
    )

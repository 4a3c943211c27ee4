"""Email and Slack notifications, delivered through the `app.notification_outbox` table.

Alert rules never talk to SMTP or Slack directly: they `enqueue()` a row in the same transaction
that records the alert, so a notification exists exactly when its alert does. `deliver_pending()`
later sends each pending row in its own short transaction while holding a row lock
(`FOR UPDATE SKIP LOCKED`), so two deliverers running at once (two sensors, a retry) never pick
the same row, and a row leaves `pending` in the same commit that records the send.
"""

from __future__ import annotations

import logging
import smtplib
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from opsdash_core.db import connect
from opsdash_core.settings import Settings, get_settings

log = logging.getLogger(__name__)

Channel = Literal["email", "slack"]
CHANNELS: tuple[Channel, ...] = ("email", "slack")
MAX_ATTEMPTS = 5  # outbox attempts before a row is marked failed for good
SEND_TRIES = 3  # tries inside one attempt (transient failures only)
BACKOFF_SECONDS = 0.5  # first wait between tries; doubles each time
TIMEOUT_SECONDS = 10.0

ConnFactory = Callable[[], AbstractContextManager[psycopg.Connection]]
T = TypeVar("T")


class NotificationError(RuntimeError):
    """A notification could not be delivered. `transient` says whether trying later may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


# --- sending ---------------------------------------------------------------------------------


def _retry(action: Callable[[], T], what: str, tries: int, backoff_s: float) -> T:
    """Run `action`, retrying transient `NotificationError`s with exponential backoff."""
    attempt = 1
    while True:
        try:
            return action()
        except NotificationError as exc:
            if not exc.transient or attempt >= tries:
                raise NotificationError(
                    f"{what} failed after {attempt} tr{'y' if attempt == 1 else 'ies'}: {exc}",
                    transient=exc.transient,
                ) from exc
            delay = backoff_s * 2 ** (attempt - 1)
            log.warning(
                "%s failed (try %d/%d), retrying in %.1fs: %s", what, attempt, tries, delay, exc
            )
            time.sleep(delay)
            attempt += 1


def recipients(settings: Settings) -> list[str]:
    """ALERT_EMAIL_TO as a list (comma-separated, blanks ignored)."""
    return [a.strip() for a in settings.alert_email_to.split(",") if a.strip()]


def build_email(settings: Settings, subject: str, body: str) -> EmailMessage:
    """The plain-text message `send_email` sends (separate so its headers can be tested)."""
    msg = EmailMessage()
    msg["From"] = settings.alert_email_from
    msg["To"] = ", ".join(recipients(settings))
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain="opsdash.local")
    msg.set_content(body)
    return msg


def _smtp_once(settings: Settings, msg: EmailMessage) -> None:
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS) as smtp:
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        raise NotificationError(f"recipients refused: {exc.recipients}", transient=False) from exc
    except smtplib.SMTPResponseException as exc:
        # 4xx replies are "try again later" by definition; 5xx are permanent.
        raise NotificationError(
            f"SMTP {exc.smtp_code} {exc.smtp_error!r}", transient=400 <= exc.smtp_code < 500
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timeout, DNS
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        raise NotificationError(f"SMTP server {where} unreachable: {exc}", transient=True) from exc


def skip_reason(settings: Settings, channel: Channel) -> str | None:
    """Why `channel` cannot send with these settings, or None when it is configured."""
    if channel == "email" and not recipients(settings):
        return "ALERT_EMAIL_TO is empty"
    if channel == "slack" and not settings.slack_webhook_url:
        return "SLACK_WEBHOOK_URL is empty"
    return None


def send_email(
    settings: Settings,
    subject: str,
    body: str,
    *,
    tries: int = SEND_TRIES,
    backoff_s: float = BACKOFF_SECONDS,
) -> bool:
    """Send a plain-text email to ALERT_EMAIL_TO through SMTP_HOST:SMTP_PORT.

    Returns False (and logs why) when no recipient is configured. Raises `NotificationError`
    once the retries are spent, or at once for a permanent refusal.
    """
    reason = skip_reason(settings, "email")
    if reason:
        log.info("email %r not sent: %s", subject, reason)
        return False
    msg = build_email(settings, subject, body)
    _retry(lambda: _smtp_once(settings, msg), "email", tries, backoff_s)
    return True


def _post_once(url: str, payload: dict[str, Any]) -> None:
    import httpx  # ~1 s to import here; every Dagster process loads this module, few post

    try:
        resp = httpx.post(url, json=payload, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        raise NotificationError(f"Slack webhook unreachable: {exc!r}", transient=True) from exc
    if resp.status_code >= 400:
        transient = resp.status_code == 429 or resp.status_code >= 500
        raise NotificationError(
            f"Slack webhook answered {resp.status_code}: {resp.text[:200]}", transient=transient
        )


def send_slack(
    settings: Settings,
    payload: dict[str, Any],
    *,
    tries: int = SEND_TRIES,
    backoff_s: float = BACKOFF_SECONDS,
) -> bool:
    """POST `payload` as JSON to SLACK_WEBHOOK_URL (an incoming-webhook URL).

    Returns False (and logs why) when no URL is configured. Raises `NotificationError` once the
    retries are spent, or at once for a 4xx other than 429.
    """
    reason = skip_reason(settings, "slack")
    if reason:
        log.info("Slack message not sent: %s", reason)
        return False
    url = settings.slack_webhook_url
    _retry(lambda: _post_once(url, payload), "Slack message", tries, backoff_s)
    return True


# --- message shapes --------------------------------------------------------------------------


def slack_message(
    title: str, summary: str, items: Sequence[str] = (), footer: str = ""
) -> dict[str, Any]:
    """A Block Kit message: header, summary, an optional bullet list, an optional footer.

    `text` repeats the essentials because Slack shows it in notifications and to clients that
    do not render blocks. Section text is capped at Slack's 3,000 characters.
    """
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": summary[:3000]}},
    ]
    if items:
        bullets = "\n".join(f"• {line}" for line in items)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": bullets[:3000]}})
    if footer:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer[:3000]}]})
    return {"text": f"{title}: {summary}"[:3000], "blocks": blocks}


# --- the outbox ------------------------------------------------------------------------------

ENQUEUE_SQL = """
insert into app.notification_outbox (channel, subject, body, payload, alert_ids)
values (%(channel)s, %(subject)s, %(body)s, %(payload)s, %(alert_ids)s)
returning id
"""

# One row at a time: its lock is held only while that one message is being sent.
CLAIM_SQL = """
select id, channel, subject, body, payload, attempts
from app.notification_outbox
where status = 'pending' and id <> all(%(seen)s) and channel <> all(%(down)s)
order by created_at, id
limit 1
for update skip locked
"""

MARK_SENT_SQL = """
update app.notification_outbox
set status = 'sent', attempts = attempts + 1, sent_at = now(), last_error = null
where id = %(id)s and status = 'pending'
"""

MARK_FAILED_SQL = """
update app.notification_outbox
set status = case when %(give_up)s then 'failed' else 'pending' end,
    attempts = attempts + 1,
    last_error = %(error)s
where id = %(id)s and status = 'pending'
"""


def enqueue(
    conn: psycopg.Connection,
    channel: Channel,
    subject: str,
    body: str,
    payload: dict[str, Any] | None = None,
    alert_ids: Sequence[int] = (),
) -> int:
    """Add a pending notification in the caller's transaction; returns its outbox id.

    For email, `subject`/`body` are the message. For Slack, `payload` is the JSON posted (when
    empty, a message is built from `subject`/`body`).
    """
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {CHANNELS}")
    with conn.cursor() as cur:
        cur.execute(
            ENQUEUE_SQL,
            {
                "channel": channel,
                "subject": subject,
                "body": body,
                "payload": Jsonb(payload or {}),
                "alert_ids": list(alert_ids),
            },
        )
        row = cur.fetchone()
    if row is None:  # pragma: no cover - INSERT ... RETURNING always yields the row
        raise RuntimeError("outbox insert returned no id")
    return int(row[0])


@dataclass
class DeliveryReport:
    """What one `deliver_pending` pass did. `retrying` rows stay pending for the next pass."""

    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    out_of_time: bool = False

    @property
    def attempted(self) -> int:
        return len(self.sent) + len(self.retrying) + len(self.failed) + len(self.skipped)

    def summary(self) -> str:
        if not self.attempted:
            return "no pending notifications"
        text = (
            f"{len(self.sent)} sent, {len(self.retrying)} to retry, "
            f"{len(self.failed)} failed, {len(self.skipped)} skipped"
        )
        if self.out_of_time:
            text += " (time budget reached; the rest waits for the next pass)"
        return text


def _send_row(row: dict[str, Any], settings: Settings, tries: int, backoff_s: float) -> bool:
    if row["channel"] == "email":
        return send_email(settings, row["subject"], row["body"], tries=tries, backoff_s=backoff_s)
    payload = row["payload"] or slack_message(row["subject"], row["body"])
    return send_slack(settings, payload, tries=tries, backoff_s=backoff_s)


def _factory(target: str | ConnFactory | None) -> ConnFactory:
    if target is None:
        return lambda: connect(get_settings().warehouse_url)
    if isinstance(target, str):
        url = target
        return lambda: connect(url)
    return target


def deliver_pending(
    target: str | ConnFactory | None = None,
    settings: Settings | None = None,
    *,
    limit: int = 200,
    budget_s: float = 40.0,
    tries: int = SEND_TRIES,
    backoff_s: float = BACKOFF_SECONDS,
) -> DeliveryReport:
    """Send pending outbox rows, oldest first.

    Each row is locked while it is sent and leaves `pending` in the commit that records the
    send, so concurrent deliverers and later passes never resend it; only a crash between the
    send and that commit can repeat a message (outboxes are at-least-once by nature).

    `target` is a warehouse URL or a zero-argument factory returning a connection context
    manager (e.g. `WarehouseResource.connect`); None means the settings' warehouse. A failed
    send adds one attempt and records `last_error`; the row stays pending until it has failed
    `MAX_ATTEMPTS` times or the failure is permanent. A channel that is not configured marks the
    row failed with a "skipped:" reason, since retrying cannot help until someone configures it.
    `budget_s` bounds the pass (a Dagster sensor tick must finish in about a minute).
    """
    settings = settings or get_settings()
    report = DeliveryReport()
    seen: list[int] = []
    down: list[str] = []  # channels that failed transiently: leave their rows for the next pass
    started = time.monotonic()
    with _factory(target)() as conn:
        while len(seen) < limit:
            if time.monotonic() - started > budget_s:
                report.out_of_time = True
                break
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(CLAIM_SQL, {"seen": seen, "down": down})
                row = cur.fetchone()
                if row is None:
                    conn.commit()
                    break
                seen.append(row["id"])
                try:
                    delivered = _send_row(row, settings, tries, backoff_s)
                except Exception as exc:  # any failure, even a bug, is recorded on the row
                    transient = not isinstance(exc, NotificationError) or exc.transient
                    give_up = not transient or row["attempts"] + 1 >= MAX_ATTEMPTS
                    if transient and isinstance(exc, NotificationError):
                        down.append(row["channel"])
                    error = (
                        str(exc)
                        if isinstance(exc, NotificationError)
                        else f"{type(exc).__name__}: {exc}"
                    )
                    cur.execute(
                        MARK_FAILED_SQL, {"id": row["id"], "give_up": give_up, "error": error}
                    )
                    (report.failed if give_up else report.retrying).append(row["id"])
                    report.errors[row["id"]] = error
                    log.warning(
                        "notification %s (%s) not delivered: %s", row["id"], row["channel"], error
                    )
                else:
                    if delivered:
                        cur.execute(MARK_SENT_SQL, {"id": row["id"]})
                        report.sent.append(row["id"])
                    else:
                        reason = f"skipped: {skip_reason(settings, row['channel'])}"
                        cur.execute(
                            MARK_FAILED_SQL, {"id": row["id"], "give_up": True, "error": reason}
                        )
                        report.skipped.append(row["id"])
            conn.commit()
    return report

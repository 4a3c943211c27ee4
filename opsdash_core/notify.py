"""Email and Slack notifications, delivered through the `app.notification_outbox` table.

Alert rules never talk to SMTP or Slack directly: they `enqueue_routed()` (or `enqueue()`) rows
in the same transaction that records the alert, so a notification exists exactly when its
alert does. `deliver_pending()` later sends each due row:

- claim: one row at a time under `FOR UPDATE SKIP LOCKED`, committed as `sending` with the
  claim time (a lease), so two deliverers never pick the same row;
- send: the row's deterministic `Message-ID` (and, for Slack, its outbox id) goes with it, the
  same on every retry, so a receiver can de-duplicate;
- mark: `sent` commits synchronously right after the send. A deliverer that dies between the
  send and the mark leaves the row in `sending`; once the lease expires it is sent again, at
  most once more, carrying the same Message-ID.

A failure reschedules the row with exponential backoff and jitter (capped) and gives up by AGE,
not by count: a relay down for an hour delays mail, it does not lose it. Given-up rows are
listed (`given_up_notifications`) and re-driven by `requeue_notifications` / `opsdash outbox
requeue`. Once SMTP accepted `DATA`, nothing is retried inside the attempt: an error after that
point (timeout, dropped connection) may follow a delivered message, so the row counts as sent
with its uncertainty noted in `last_error`.
"""

from __future__ import annotations

import logging
import random
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
SEVERITIES = ("critical", "warning", "info")
KINDS = ("alert", "resolved", "repeat", "summary", "pipeline", "digest")
ROUTE_TARGETS = ("email", "slack", "digest")
SEND_TRIES = 3  # tries inside one attempt, only while nothing can have been delivered yet
BACKOFF_SECONDS = 0.5  # first wait between those tries; doubles each time
TIMEOUT_SECONDS = 10.0
RETRY_BASE_SECONDS = 30.0  # first outbox retry after about this long; doubles per attempt
LEASE_SECONDS = 600.0  # a row left `sending` this long belonged to a deliverer that died
DIGEST_ITEMS = 200  # entries written out in full in one digest email

ConnFactory = Callable[[], AbstractContextManager[psycopg.Connection]]
T = TypeVar("T")


class NotificationError(RuntimeError):
    """A notification could not be delivered. `transient` says whether trying later may help;
    `retry_now` whether it may be retried inside the same attempt (nothing can have been
    delivered yet)."""

    def __init__(self, message: str, *, transient: bool, retry_now: bool | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_now = transient if retry_now is None else retry_now


# --- sending ---------------------------------------------------------------------------------


def _retry(action: Callable[[], T], what: str, tries: int, backoff_s: float) -> T:
    """Run `action`, retrying `NotificationError`s that allow it, with exponential backoff."""
    attempt = 1
    while True:
        try:
            return action()
        except NotificationError as exc:
            if not exc.retry_now or attempt >= tries:
                raise NotificationError(
                    f"{what} failed after {attempt} tr{'y' if attempt == 1 else 'ies'}: {exc}",
                    transient=exc.transient,
                    retry_now=False,
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


def message_domain(settings: Settings) -> str:
    """The right-hand side of our Message-IDs: the sender's domain, stable across hosts."""
    domain = settings.alert_email_from.rpartition("@")[2].strip(" >")
    return domain or "opsdash.local"


def build_email(
    settings: Settings,
    subject: str,
    body: str,
    *,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """The plain-text message `send_email` sends (separate so its headers can be tested).

    An outbox row passes its own `message_id`, so every retry of it carries the same one."""
    msg = EmailMessage()
    msg["From"] = settings.alert_email_from
    msg["To"] = ", ".join(recipients(settings))
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id or make_msgid(domain=message_domain(settings))
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


def _smtp_connect(settings: Settings) -> smtplib.SMTP:
    if settings.smtp_security == "ssl":
        return smtplib.SMTP_SSL(
            settings.smtp_host,
            settings.smtp_port,
            timeout=TIMEOUT_SECONDS,
            context=ssl.create_default_context(),
        )
    smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS)
    if settings.smtp_security == "starttls":
        smtp.ehlo()
        smtp.starttls(context=ssl.create_default_context())
        smtp.ehlo()
    return smtp


def _reply_error(what: str, code: int, text: bytes | str, *, after_data: bool) -> NotificationError:
    # 4xx replies are "try again later" by definition; 5xx are permanent.
    detail = text.decode(errors="replace") if isinstance(text, bytes) else text
    return NotificationError(
        f"SMTP {code} {detail!r} ({what})",
        transient=400 <= code < 500,
        retry_now=False if after_data else None,
    )


def _message_bytes(msg: EmailMessage) -> bytes:
    """The message as SMTP DATA wants it: CRLF line ends, leading dots doubled, final CRLF.CRLF."""
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    raw = re.sub(rb"(?m)^\.", b"..", raw)
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return raw + b".\r\n"


def _smtp_once(settings: Settings, msg: EmailMessage) -> str | None:
    """One SMTP transaction. Returns None when the server accepted the message, or a note when
    its fate is unknown (the connection failed after the message was handed over).

    Errors before DATA raise `NotificationError` (transient ones may be retried at once);
    an explicit refusal of the transmitted message raises without an immediate retry.
    """
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    to = recipients(settings)
    smtp: smtplib.SMTP | None = None
    try:
        smtp = _smtp_connect(settings)
        smtp.ehlo_or_helo_if_needed()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        code, text = smtp.mail(settings.alert_email_from)
        if code != 250:
            raise _reply_error("MAIL FROM", code, text, after_data=False)
        refused: dict[str, tuple[int, bytes]] = {}
        for rcpt in to:
            code, text = smtp.rcpt(rcpt)
            if code not in (250, 251):
                refused[rcpt] = (code, text)
        if len(refused) == len(to):
            codes = {c for c, _ in refused.values()}
            raise NotificationError(
                f"recipients refused: {refused}", transient=all(400 <= c < 500 for c in codes)
            )
        code, text = smtp.docmd("data")
        if code != 354:
            raise _reply_error("DATA", code, text, after_data=False)
    except NotificationError:
        if smtp is not None:
            smtp.close()
        raise
    except smtplib.SMTPAuthenticationError as exc:
        if smtp is not None:
            smtp.close()
        raise NotificationError(f"SMTP login refused: {exc.smtp_code}", transient=False) from exc
    except smtplib.SMTPResponseException as exc:
        if smtp is not None:
            smtp.close()
        raise _reply_error("session", exc.smtp_code, exc.smtp_error, after_data=False) from exc
    except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timeout, DNS, TLS
        if smtp is not None:
            smtp.close()
        raise NotificationError(f"SMTP server {where} unreachable: {exc}", transient=True) from exc

    # DATA was accepted: from here on the server may hold the message, so never retry now.
    try:
        smtp.send(_message_bytes(msg))
        code, text = smtp.getreply()
    except (smtplib.SMTPException, OSError) as exc:
        smtp.close()
        return f"sent, outcome unknown: the connection failed after DATA ({exc})"
    if code != 250:
        smtp.close()
        raise _reply_error("after DATA", code, text, after_data=True)
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
    return None


def skip_reason(settings: Settings, channel: Channel) -> str | None:
    """Why `channel` cannot send with these settings, or None when it is configured."""
    if channel == "email" and not recipients(settings):
        return "ALERT_EMAIL_TO is empty"
    if channel == "slack" and not settings.slack_webhook_url:
        return "SLACK_WEBHOOK_URL is empty"
    return None


def _deliver_email(
    settings: Settings,
    subject: str,
    body: str,
    *,
    tries: int,
    backoff_s: float,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> str | None:
    msg = build_email(settings, subject, body, message_id=message_id, headers=headers)
    return _retry(lambda: _smtp_once(settings, msg), "email", tries, backoff_s)


def send_email(
    settings: Settings,
    subject: str,
    body: str,
    *,
    tries: int = SEND_TRIES,
    backoff_s: float = BACKOFF_SECONDS,
    message_id: str | None = None,
) -> bool:
    """Send a plain-text email to ALERT_EMAIL_TO through SMTP_HOST:SMTP_PORT (with
    SMTP_SECURITY and SMTP_USERNAME/SMTP_PASSWORD when set).

    Returns False (and logs why) when no recipient is configured. Raises `NotificationError`
    once the retries are spent, or at once for a permanent refusal. A failure after the message
    was handed over counts as sent (logged), since retrying could deliver it twice.
    """
    reason = skip_reason(settings, "email")
    if reason:
        log.info("email %r not sent: %s", subject, reason)
        return False
    note = _deliver_email(
        settings, subject, body, tries=tries, backoff_s=backoff_s, message_id=message_id
    )
    if note:
        log.warning("email %r: %s", subject, note)
    return True


def _post_once(url: str, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    import httpx  # ~1 s to import here; every Dagster process loads this module, few post

    try:
        resp = httpx.post(url, json=payload, headers=headers, timeout=TIMEOUT_SECONDS)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing reached the receiver
        raise NotificationError(f"Slack webhook unreachable: {exc!r}", transient=True) from exc
    except httpx.HTTPError as exc:  # sent, answer lost: the outbox retries later with its id
        raise NotificationError(
            f"Slack webhook did not answer: {exc!r}", transient=True, retry_now=False
        ) from exc
    if resp.status_code >= 400:
        # 429 and 503 say the post was not processed; other 5xx may follow a processed post.
        transient = resp.status_code == 429 or resp.status_code >= 500
        raise NotificationError(
            f"Slack webhook answered {resp.status_code}: {resp.text[:200]}",
            transient=transient,
            retry_now=resp.status_code in (429, 503),
        )


def send_slack(
    settings: Settings,
    payload: dict[str, Any],
    *,
    tries: int = SEND_TRIES,
    backoff_s: float = BACKOFF_SECONDS,
    headers: dict[str, str] | None = None,
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
    _retry(lambda: _post_once(url, payload, headers), "Slack message", tries, backoff_s)
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


def alert_link(alert_id: int, settings: Settings | None = None) -> str:
    """The app's page for one alert (OPSDASH_APP_BASE_URL)."""
    return f"{(settings or get_settings()).app_base_url}/alerts?alert={int(alert_id)}"


def alerts_link(settings: Settings | None = None) -> str:
    """The app's alert list."""
    return f"{(settings or get_settings()).app_base_url}/alerts"


def with_link(payload: dict[str, Any], link: str) -> dict[str, Any]:
    """`payload` with an "Open in opsdash" link after its blocks (or text)."""
    out = dict(payload)
    blocks = list(out.get("blocks") or [])
    if blocks:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<{link}|Open in opsdash>"}}
        )
        out["blocks"] = blocks
    else:
        out["text"] = f"{out.get('text', '')}\n<{link}|Open in opsdash>".strip()
    return out


def tag_slack_payload(payload: dict[str, Any], outbox_id: int, message_id: str) -> dict[str, Any]:
    """`payload` carrying its outbox id (Slack message metadata and a context line), so that a
    receiver can recognise a retried post as the same message."""
    out = dict(payload)
    out["metadata"] = {
        "event_type": "opsdash_notification",
        "event_payload": {"outbox_id": outbox_id, "message_id": message_id},
    }
    tag = f"opsdash notification #{outbox_id}"
    blocks = list(out.get("blocks") or [])
    if blocks:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": tag}]})
        out["blocks"] = blocks
    else:
        out["text"] = f"{out.get('text', '')}\n_{tag}_".strip()
    return out


def outbox_message_id(outbox_id: int, created_at: datetime, settings: Settings) -> str:
    """The Message-ID of an outbox row: the same for every retry of that row."""
    return f"<opsdash-outbox-{outbox_id}.{int(created_at.timestamp())}@{message_domain(settings)}>"


# --- the outbox: enqueueing and routing ------------------------------------------------------

ENQUEUE_SQL = """
insert into app.notification_outbox
    (channel, subject, body, payload, alert_ids, severity, kind, status)
values (%(channel)s, %(subject)s, %(body)s, %(payload)s, %(alert_ids)s, %(severity)s, %(kind)s,
        %(status)s)
returning id
"""


def enqueue(
    conn: psycopg.Connection,
    channel: Channel,
    subject: str,
    body: str,
    payload: dict[str, Any] | None = None,
    alert_ids: Sequence[int] = (),
    *,
    severity: str | None = None,
    kind: str = "alert",
    digest: bool = False,
) -> int:
    """Add a notification in the caller's transaction; returns its outbox id.

    For email, `subject`/`body` are the message. For Slack, `payload` is the JSON posted (when
    empty, a message is built from `subject`/`body`). `digest=True` (email only) parks the row
    for the daily digest instead of sending it. The caller's commit is made synchronous: a
    committed alert must not lose its notification to a PostgreSQL crash.
    """
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {CHANNELS}")
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}; expected one of {SEVERITIES}")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    if digest and channel != "email":
        raise ValueError("only email rows can wait for the digest")
    with conn.cursor() as cur:
        cur.execute("set local synchronous_commit = on")
        cur.execute(
            ENQUEUE_SQL,
            {
                "channel": channel,
                "subject": subject,
                "body": body,
                "payload": Jsonb(payload or {}),
                "alert_ids": list(alert_ids),
                "severity": severity,
                "kind": kind,
                "status": "digest" if digest else "pending",
            },
        )
        row = cur.fetchone()
    if row is None:  # pragma: no cover - INSERT ... RETURNING always yields the row
        raise RuntimeError("outbox insert returned no id")
    return int(row[0])


def route(severity: str, settings: Settings | None = None) -> list[str]:
    """Where a notification of `severity` goes: among email, slack, digest (OPSDASH_ROUTE_*)."""
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}; expected one of {SEVERITIES}")
    settings = settings or get_settings()
    raw = {
        "critical": settings.route_critical,
        "warning": settings.route_warning,
        "info": settings.route_info,
    }[severity]
    targets = [t.strip().lower() for t in raw.split(",") if t.strip()]
    unknown = [t for t in targets if t not in ROUTE_TARGETS]
    if unknown:
        raise ValueError(
            f"OPSDASH_ROUTE_{severity.upper()} names {unknown}; expected some of {ROUTE_TARGETS}"
        )
    return list(dict.fromkeys(targets))


def resolved_channels(settings: Settings | None = None) -> set[Channel]:
    """The channels that get resolved notices (OPSDASH_SEND_RESOLVED)."""
    settings = settings or get_settings()
    named = [c.strip().lower() for c in settings.send_resolved.split(",") if c.strip()]
    unknown = [c for c in named if c not in CHANNELS]
    if unknown:
        raise ValueError(f"OPSDASH_SEND_RESOLVED names {unknown}; expected some of {CHANNELS}")
    return {c for c in CHANNELS if c in named}


def route_kind(severity: str, kind: str, settings: Settings | None = None) -> list[str]:
    """`route(severity)`, less the channels that do not want this kind of notice: a resolved
    notice goes only where OPSDASH_SEND_RESOLVED allows (the digest is email)."""
    settings = settings or get_settings()
    targets = route(severity, settings)
    if kind != "resolved":
        return targets
    allowed = resolved_channels(settings)
    return [t for t in targets if ("slack" if t == "slack" else "email") in allowed]


def enqueue_routed(
    conn: psycopg.Connection,
    *,
    severity: str,
    kind: str,
    subject: str,
    body: str,
    slack: dict[str, Any] | None,
    alert_ids: Sequence[int],
    link: str | None = None,
    settings: Settings | None = None,
) -> list[int]:
    """Enqueue one notification on the channels its severity routes to; returns the outbox ids.

    Defaults: critical → email and Slack now; warning → Slack; info → the daily email digest.
    A `resolved` notice goes only to the channels OPSDASH_SEND_RESOLVED names.
    `link` (a URL, or a path such as "/alerts?alert=7" under OPSDASH_APP_BASE_URL) is added to
    the email body and the Slack blocks; without it a single-alert message links to that alert
    and a multi-alert one to the alert list. `slack` is a Block Kit payload (None: built from
    subject and body).
    """
    settings = settings or get_settings()
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    targets = route_kind(severity, kind, settings)
    if link is None and len(alert_ids) == 1:
        link = alert_link(alert_ids[0], settings)
    elif link is None and alert_ids:
        link = alerts_link(settings)
    elif link is not None and link.startswith("/"):
        link = settings.app_base_url + link
    email_body = f"{body.rstrip()}\n\nOpen in opsdash: {link}\n" if link else body
    payload = slack or slack_message(subject, body)
    if link:
        payload = with_link(payload, link)
    ids: list[int] = []
    common: dict[str, Any] = {"alert_ids": alert_ids, "severity": severity, "kind": kind}
    for target in targets:
        if target == "slack":
            ids.append(enqueue(conn, "slack", subject, body, payload=payload, **common))
        else:
            digest = target == "digest"
            ids.append(enqueue(conn, "email", subject, email_body, digest=digest, **common))
    return ids


# --- the outbox: delivery --------------------------------------------------------------------

# One row at a time, committed as `sending` (the lease): a pending row that is due, or a row a
# dead deliverer left in `sending` past the lease.
CLAIM_SQL = """
with candidate as (
    select id
    from app.notification_outbox
    where ((status = 'pending' and next_attempt_at <= %(now)s)
           or (status = 'sending' and claimed_at < %(lease_before)s))
      and id <> all(%(seen)s) and channel <> all(%(down)s)
    order by next_attempt_at, id
    limit 1
    for update skip locked
)
update app.notification_outbox o
set status = 'sending', claimed_at = %(now)s
from candidate
where o.id = candidate.id
returning o.id, o.channel, o.subject, o.body, o.payload, o.attempts, o.created_at,
          o.requeued_at, o.message_id
"""

SET_MESSAGE_ID_SQL = """
update app.notification_outbox set message_id = %(message_id)s
where id = %(id)s and message_id is null
"""

MARK_SENT_SQL = """
update app.notification_outbox
set status = 'sent', attempts = attempts + 1, sent_at = %(now)s, last_error = %(note)s,
    claimed_at = null
where id = %(id)s and status = 'sending'
"""

MARK_FAILED_SQL = """
update app.notification_outbox
set status = %(status)s,
    attempts = attempts + 1,
    last_error = %(error)s,
    next_attempt_at = %(next_attempt_at)s,
    given_up_at = case when %(status)s = 'given_up' then %(now)s end,
    claimed_at = null
where id = %(id)s and status = 'sending'
"""

# A channel that just delivered is up again: rows waiting out a long backoff on it go now.
RECOVERED_SQL = """
update app.notification_outbox
set next_attempt_at = %(now)s
where status = 'pending' and channel = %(channel)s and next_attempt_at > %(now)s
"""


@dataclass
class DeliveryReport:
    """What one `deliver_pending` pass did. `retrying` rows wait for their next attempt;
    `failed` ones were given up (too old, or refused for good)."""

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


def retry_delay(
    attempts: int, cap_s: float, *, base_s: float = RETRY_BASE_SECONDS, rand: float | None = None
) -> float:
    """Seconds before the next try after `attempts` failed ones: exponential, with jitter
    between half and all of the step (so retries of many rows spread out), capped."""
    step = min(cap_s, base_s * 2 ** max(attempts - 1, 0))
    jitter = random.random() if rand is None else rand
    return min(cap_s, step / 2 + step / 2 * jitter)


def _factory(target: str | ConnFactory | None) -> ConnFactory:
    if target is None:
        return lambda: connect(get_settings().warehouse_url)
    if isinstance(target, str):
        url = target
        return lambda: connect(url)
    return target


def _send_row(
    row: dict[str, Any], settings: Settings, tries: int, backoff_s: float
) -> tuple[bool, str | None]:
    """(delivered, note): delivered False means the channel is not configured."""
    headers = {"X-Opsdash-Outbox-Id": str(row["id"])}
    if row["channel"] == "email":
        if skip_reason(settings, "email"):
            return False, None
        note = _deliver_email(
            settings,
            row["subject"],
            row["body"],
            tries=tries,
            backoff_s=backoff_s,
            message_id=row["message_id"],
            headers=headers,
        )
        return True, note
    payload = row["payload"] or slack_message(row["subject"], row["body"])
    payload = tag_slack_payload(payload, row["id"], row["message_id"])
    headers["X-Opsdash-Message-Id"] = row["message_id"]
    return send_slack(settings, payload, tries=tries, backoff_s=backoff_s, headers=headers), None


def deliver_pending(
    target: str | ConnFactory | None = None,
    settings: Settings | None = None,
    *,
    limit: int = 200,
    budget_s: float = 40.0,
    tries: int = SEND_TRIES,
    backoff_s: float = BACKOFF_SECONDS,
    now: datetime | None = None,
    lease_s: float = LEASE_SECONDS,
    after_send: Callable[[int], None] | None = None,
) -> DeliveryReport:
    """Send the outbox rows that are due, oldest first (see the module docstring).

    `target` is a warehouse URL or a zero-argument factory returning a connection context
    manager (e.g. `WarehouseResource.connect`); None means the settings' warehouse. A failed
    send records `last_error` and schedules the next attempt with capped exponential backoff
    (OPSDASH_OUTBOX_BACKOFF_CAP_S); a row older than OPSDASH_OUTBOX_GIVE_UP_HOURS (counted
    from its last requeue) or refused for good becomes `given_up`. A channel that is not
    configured marks the row `failed` with a "skipped:" reason. `budget_s` bounds the pass (a
    Dagster sensor tick must finish in about a minute). `now` replaces the clock (tests
    simulate hours of outage); `after_send` runs between a send and its mark (tests kill the
    deliverer there).
    """
    settings = settings or get_settings()
    report = DeliveryReport()
    seen: list[int] = []
    down: list[str] = []  # channels that failed transiently: leave their rows for the next pass
    started = time.monotonic()
    give_up_after = timedelta(hours=settings.outbox_give_up_hours)
    with _factory(target)() as conn:
        while len(seen) < limit:
            if time.monotonic() - started > budget_s:
                report.out_of_time = True
                break
            at = now or datetime.now(UTC)
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute("set local synchronous_commit = on")
                cur.execute(
                    CLAIM_SQL,
                    {
                        "now": at,
                        "lease_before": at - timedelta(seconds=lease_s),
                        "seen": seen,
                        "down": down,
                    },
                )
                row = cur.fetchone()
                if row is not None and row["message_id"] is None:
                    row["message_id"] = outbox_message_id(row["id"], row["created_at"], settings)
                    cur.execute(
                        SET_MESSAGE_ID_SQL, {"id": row["id"], "message_id": row["message_id"]}
                    )
            conn.commit()  # the claim (and the Message-ID) are durable before anything is sent
            if row is None:
                break
            seen.append(row["id"])
            outcome: tuple[str, dict[str, Any]]
            try:
                delivered, note = _send_row(row, settings, tries, backoff_s)
            except Exception as exc:  # any failure, even a bug, is recorded on the row
                transient = not isinstance(exc, NotificationError) or exc.transient
                if transient and isinstance(exc, NotificationError):
                    down.append(row["channel"])
                error = (
                    str(exc)
                    if isinstance(exc, NotificationError)
                    else f"{type(exc).__name__}: {exc}"
                )
                age = at - (row["requeued_at"] or row["created_at"])
                give_up = not transient or age >= give_up_after
                if give_up:
                    why = "refused for good" if not transient else f"still failing after {age}"
                    error = f"given up ({why}): {error}"
                delay = retry_delay(row["attempts"] + 1, settings.outbox_backoff_cap_seconds)
                outcome = (
                    MARK_FAILED_SQL,
                    {
                        "status": "given_up" if give_up else "pending",
                        "error": error,
                        "next_attempt_at": at + timedelta(seconds=delay),
                        "now": at,
                    },
                )
                (report.failed if give_up else report.retrying).append(row["id"])
                report.errors[row["id"]] = error
                log.warning(
                    "notification %s (%s) not delivered: %s", row["id"], row["channel"], error
                )
            else:
                if delivered:
                    if after_send is not None:
                        after_send(row["id"])
                    outcome = (MARK_SENT_SQL, {"now": at, "note": note})
                    report.sent.append(row["id"])
                else:
                    reason = f"skipped: {skip_reason(settings, row['channel'])}"
                    outcome = (
                        MARK_FAILED_SQL,
                        {"status": "failed", "error": reason, "next_attempt_at": at, "now": at},
                    )
                    report.skipped.append(row["id"])
            sql, params = outcome
            with conn.cursor() as cur:
                cur.execute("set local synchronous_commit = on")
                cur.execute(sql, {"id": row["id"], **params})
                if sql is MARK_SENT_SQL and row["attempts"] > 0:
                    cur.execute(RECOVERED_SQL, {"now": at, "channel": row["channel"]})
            conn.commit()
    return report


# --- the outbox: digest, given-up rows, requeue ----------------------------------------------

DIGEST_ROWS_SQL = """
select id, subject, body, alert_ids, created_at, kind
from app.notification_outbox
where status = 'digest' and created_at <= %(now)s
order by created_at, id
for update skip locked
"""

FOLD_SQL = """
update app.notification_outbox
set status = 'folded', digest_id = %(digest_id)s, sent_at = null
where id = any(%(ids)s) and status = 'digest'
"""


def build_daily_digest(
    conn: psycopg.Connection, *, now: datetime | None = None, settings: Settings | None = None
) -> int | None:
    """Fold every parked 'digest' row into one pending email; returns its outbox id (None when
    nothing waited). Runs in the caller's transaction; the folded rows point at the digest."""
    now = now or datetime.now(UTC)
    settings = settings or get_settings()
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(DIGEST_ROWS_SQL, {"now": now})
        rows = cur.fetchall()
    if not rows:
        return None
    n = len(rows)
    subject = f"[opsdash] Daily digest {now:%Y-%m-%d}: {n} notification{'s' if n != 1 else ''}"
    lines = [
        f"{n} informational notification{'s' if n != 1 else ''} since the last digest.",
        f"All alerts: {alerts_link(settings)}",
        "",
    ]
    for row in rows[:DIGEST_ITEMS]:
        lines.append(f"* {row['created_at']:%Y-%m-%d %H:%M} UTC - {row['subject']}")
        body = row["body"].strip()
        if len(body) > 1500:
            body = body[:1500] + " [...]"
        lines.extend(f"    {line}" for line in body.splitlines())
        lines.append("")
    if n > DIGEST_ITEMS:
        lines.append(f"...and {n - DIGEST_ITEMS:,} more (see the app).")
    alert_ids = sorted({a for row in rows for a in row["alert_ids"] or []})
    digest_id = enqueue(
        conn,
        "email",
        subject,
        "\n".join(lines) + "\n",
        alert_ids=alert_ids,
        severity="info",
        kind="digest",
    )
    conn.execute(FOLD_SQL, {"digest_id": digest_id, "ids": [r["id"] for r in rows]})
    return digest_id


LIST_SQL = """
select id, channel, status, severity, kind, subject, attempts, last_error, created_at,
       next_attempt_at, sent_at, given_up_at, requeued_at, message_id, alert_ids
from app.notification_outbox
where %(status)s::text is null or status = %(status)s
order by coalesce(given_up_at, created_at) desc, id desc
limit %(limit)s
"""


def given_up_notifications(conn: psycopg.Connection, limit: int = 200) -> list[dict[str, Any]]:
    """Notifications the outbox stopped trying (too old or refused for good), newest first."""
    return list_outbox(conn, status="given_up", limit=limit)


def list_outbox(
    conn: psycopg.Connection, *, status: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Outbox rows, newest first, optionally of one status."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(LIST_SQL, {"status": status, "limit": limit})
        return cur.fetchall()


REQUEUE_SQL = """
update app.notification_outbox
set status = 'pending', next_attempt_at = %(now)s, requeued_at = %(now)s, given_up_at = null,
    claimed_at = null
where (status = 'given_up' or (status = 'failed' and %(ids)s::bigint[] is not null))
  and (%(ids)s::bigint[] is null or id = any(%(ids)s::bigint[]))
returning id
"""


def requeue_notifications(
    conn: psycopg.Connection,
    *,
    ids: Sequence[int] | None = None,
    actor: str,
    now: datetime | None = None,
) -> list[int]:
    """Send given-up rows again (all of them, or `ids`, which may also name 'failed' rows that
    were skipped while their channel was not configured). Their Message-ID stays, so a receiver
    that got an earlier copy can tell; the give-up clock restarts. Audited under `actor`."""
    from opsdash_core.accounts import audit

    now = now or datetime.now(UTC)
    with conn.cursor() as cur:
        cur.execute(REQUEUE_SQL, {"now": now, "ids": None if ids is None else list(ids)})
        requeued = sorted(int(r[0]) for r in cur.fetchall())
    if requeued:
        audit(conn, actor, "outbox_requeue", ids=requeued)
    return requeued

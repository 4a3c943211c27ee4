"""`opsdash alerts list|ack|resolve|dismiss|silence|silences|unsilence|rules|evaluate`.

The same library functions as the app's Alerts page (`alerting.operations`), so the role
check, the history rows and the audit log are identical. Whoever can run this command on the
deployment's host is trusted like an admin: the actor is an admin-role user named by `--user`
(default: the OS user), recorded in app.alert_events and app.audit_log.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
import psycopg

from opsdash_core.accounts import User
from opsdash_core.settings import get_settings

USER_HELP = (
    "Name recorded as the actor (an admin-role user: shell access to the deployment is "
    "trusted like an admin). Default: the OS user."
)


def _user(name: str | None) -> User:
    return User(id=0, username=(name or getpass.getuser()), role="admin")


@contextmanager
def _conn() -> Iterator[psycopg.Connection]:
    from opsdash_core.db import connect

    with connect(get_settings().warehouse_url) as conn:
        yield conn


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from exc


@click.group()
def alerts() -> None:
    """Alerts: list, acknowledge, resolve, dismiss, silence; check the rules file.

    \b
    Changes are made as an admin-role user named by --user (default: the OS user running the
    command): whoever has a shell on the deployment is trusted like an admin. They are recorded
    in the alert's history and the audit log like the app's.
    """


@alerts.command("list")
@click.option(
    "--status",
    default="live",
    show_default=True,
    type=click.Choice(["live", "open", "acknowledged", "resolved", "dismissed", "all"]),
)
@click.option("--severity", type=click.Choice(["critical", "warning", "info"]))
@click.option("--rule")
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--groups", is_flag=True, help="One line per rule with counts instead.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(
    status: str, severity: str | None, rule: str | None, limit: int, groups: bool, as_json: bool
) -> None:
    """Alerts, live ones first, by severity and recency."""
    from alerting import operations as ops

    wanted = None if status == "all" else status
    with _conn() as conn:
        if groups:
            rows = ops.alert_groups(conn, status=wanted, severity=severity)
        else:
            rows = ops.list_alerts(conn, status=wanted, severity=severity, rule=rule, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    if not rows:
        click.echo("no alerts")
        return
    for row in rows:
        click.echo(_group_line(row) if groups else _alert_line(row))


def _alert_line(row: dict[str, Any]) -> str:
    seen = row["last_seen_at"].strftime("%Y-%m-%d %H:%M")
    extra = f" x{row['occurrences']}" if row["occurrences"] > 1 else ""
    if row["suppressed_by"]:
        extra += f" [{row['suppressed_by']}]"
    if row["acknowledged_by"] and row["status"] == "acknowledged":
        extra += f" (ack {row['acknowledged_by']})"
    return (
        f"{row['id']:>7}  {row['status']:<12} {row['severity']:<8} {row['rule']:<22} "
        f"{seen}  {row['title']}{extra}"
    )


def _group_line(row: dict[str, Any]) -> str:
    return (
        f"{row['rule']:<24} {row['worst_severity']:<8} open {row['open']:>4}  "
        f"ack {row['acknowledged']:>4}  resolved {row['resolved']:>5}  "
        f"dismissed {row['dismissed']:>4}  newest: {row['newest_title']}"
    )


def _transition(action: str, alert_id: int, comment: str | None, user: str | None) -> None:
    from alerting import operations as ops
    from opsdash_core.accounts import PermissionDeniedError

    fn = {"ack": ops.acknowledge, "resolve": ops.resolve}.get(action)
    with _conn() as conn:
        try:
            if fn is not None:
                row = fn(conn, alert_id, _user(user), comment)
            else:
                row = ops.dismiss(conn, alert_id, _user(user), comment or "")
        except (ops.AlertStateError, PermissionDeniedError) as exc:
            _fail(exc)
    click.echo(f"alert {row['id']} is now {row['status']}: {row['title']}")


@alerts.command("ack")
@click.argument("alert_id", type=int)
@click.option("--comment", "-m", help="Why / what you are doing about it.")
@click.option("--user", help=USER_HELP)
def ack(alert_id: int, comment: str | None, user: str | None) -> None:
    """Acknowledge ALERT_ID: stops repeat notifications until the ack timeout."""
    _transition("ack", alert_id, comment, user)


@alerts.command("resolve")
@click.argument("alert_id", type=int)
@click.option("--comment", "-m")
@click.option("--user", help=USER_HELP)
def resolve(alert_id: int, comment: str | None, user: str | None) -> None:
    """Resolve ALERT_ID (a new occurrence of the condition is a new alert)."""
    _transition("resolve", alert_id, comment, user)


@alerts.command("dismiss")
@click.argument("alert_id", type=int)
@click.option("--comment", "-m", required=True, help="Why it needs no action (required).")
@click.option("--user", help=USER_HELP)
def dismiss(alert_id: int, comment: str, user: str | None) -> None:
    """Dismiss ALERT_ID as not worth acting on."""
    _transition("dismiss", alert_id, comment, user)


@alerts.command("silence")
@click.option("--rule")
@click.option("--entity-type")
@click.option("--entity-id", type=int)
@click.option("--severity", type=click.Choice(["critical", "warning", "info"]))
@click.option("--for", "duration", help="How long, e.g. 2h or 30m.")
@click.option("--until", "until", help="End time (ISO 8601 with a time zone).")
@click.option("--comment", "-m", required=True, help="Why (required).")
@click.option("--user", help=USER_HELP)
def silence(
    rule: str | None,
    entity_type: str | None,
    entity_id: int | None,
    severity: str | None,
    duration: str | None,
    until: str | None,
    comment: str,
    user: str | None,
) -> None:
    """Mute notifications of matching alerts (they are still recorded) until an end time."""
    from alerting import operations as ops
    from alerting.config import parse_duration
    from opsdash_core.accounts import PermissionDeniedError

    if (duration is None) == (until is None):
        raise click.UsageError("give exactly one of --for and --until")
    try:
        if duration is not None:
            ends_at = datetime.now(UTC) + parse_duration(duration)
        else:
            ends_at = datetime.fromisoformat(str(until))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    with _conn() as conn:
        try:
            silence_id = ops.create_silence(
                conn,
                _user(user),
                rule=rule,
                entity_type=entity_type,
                entity_id=entity_id,
                severity=severity,
                ends_at=ends_at,
                comment=comment,
            )
        except (ops.AlertStateError, PermissionDeniedError) as exc:
            _fail(exc)
    click.echo(f"silence {silence_id} active until {ends_at:%Y-%m-%d %H:%M %Z}")


@alerts.command("silences")
@click.option("--all", "show_all", is_flag=True, help="Include ended silences.")
def silences(show_all: bool) -> None:
    """Silences, active ones by default."""
    from alerting import operations as ops

    with _conn() as conn:
        rows = ops.list_silences(conn, active_only=not show_all)
    if not rows:
        click.echo("no silences")
    for row in rows:
        matchers = ", ".join(
            f"{k}={row[k]}" for k in ("rule", "entity_type", "entity_id", "severity") if row[k]
        )
        state = "active" if row["is_active"] else "ended"
        click.echo(
            f"{row['id']:>5}  {state:<6} until {row['ends_at']:%Y-%m-%d %H:%M}  {matchers}  "
            f"by {row['created_by']}: {row['comment']}"
        )


@alerts.command("unsilence")
@click.argument("silence_id", type=int)
@click.option("--user", help=USER_HELP)
def unsilence(silence_id: int, user: str | None) -> None:
    """End SILENCE_ID now."""
    from alerting import operations as ops

    with _conn() as conn:
        try:
            ops.expire_silence(conn, silence_id, _user(user))
        except ops.AlertStateError as exc:
            _fail(exc)
    click.echo(f"silence {silence_id} ended")


@alerts.command("rules")
def rules() -> None:
    """Validate the rules files (repository + ALERT_RULES_PATH) and list the rules."""
    from alerting.config import RulesFileError, load_rules

    try:
        config = load_rules()
    except RulesFileError as exc:
        _fail(exc)
    click.echo("rules from " + " + ".join(config.sources))
    for rule in config.rules:
        state = "" if rule.enabled else "  (disabled)"
        click.echo(f"{rule.name:<24} {rule.severity:<8} {rule.kind:<22} {rule.trigger:<15}{state}")


@alerts.command("evaluate")
@click.option("--rule", "names", multiple=True, help="Only these rules (default: all).")
def evaluate(names: tuple[str, ...]) -> None:
    """Evaluate the rules now and dispatch notifications (what the sensors do each tick)."""
    from alerting.config import RulesFileError, load_rules
    from alerting.engine import run_tick

    try:
        config = load_rules()
        chosen = [config.rule(n) for n in names] if names else None
    except (RulesFileError, KeyError) as exc:
        _fail(exc)
    with _conn() as conn:
        report = run_tick(conn, config, rules=chosen)
    for part in report.describe().split("; "):
        click.echo(part)

"""`opsdash recs list|accept|dismiss|snooze|generate`: recommendations from the command line.

Acting needs a user of the app (`--user NAME`, an operator or admin): the same role check, event
history and audit row as a click in the app, because both call `alerting.recommendations`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

from opsdash_core.accounts import PermissionDeniedError, User

DURATION_RE = re.compile(r"^(\d+)([hdw])$")
UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_until(text: str, now: datetime) -> datetime:
    """`12h`, `3d`, `1w` from now, or an ISO time (UTC when it names no zone)."""
    match = DURATION_RE.match(text.strip())
    if match:
        return now + timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: use 12h, 3d, 1w or an ISO time") from exc
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _user(username: str) -> User:
    from opsdash_core.accounts import get_user
    from opsdash_core.db import warehouse

    with warehouse() as conn:
        user = get_user(conn, username)
    if user is None:
        raise click.ClickException(f"no user {username!r} (opsdash users list)")
    return user


@click.group()
def recs() -> None:
    """Recommended interventions: list them, accept, dismiss or snooze one."""


@recs.command("list")
@click.option(
    "--status",
    default="active",
    show_default=True,
    type=click.Choice(["active", "snoozed", "accepted", "dismissed", "expired", "cleared", "all"]),
)
@click.option("--entity-type", type=click.Choice(["customer", "tutor", "subject"]))
@click.option("--entity-id", type=int)
@click.option("--limit", default=20, show_default=True, type=int)
def list_command(status: str, entity_type: str | None, entity_id: int | None, limit: int) -> None:
    """Highest priority first."""
    from alerting.recommendations import list_recommendations
    from opsdash_core.db import warehouse

    with warehouse() as conn:
        rows = list_recommendations(
            conn,
            status=None if status == "all" else status,
            entity_type=entity_type,
            entity_id=entity_id,
            limit=limit,
        )
    if not rows:
        click.echo(f"no {status} recommendations")
    for r in rows:
        due = r["due_at"].strftime("%Y-%m-%d %H:%M") if r["due_at"] else "-"
        click.echo(
            f"#{r['id']:<6} {r['status']:<9} p={r['priority']:<8.2f} due {due}  "
            f"{r['entity_type']} {r['entity_id']}  {r['rec_type']}: {r['reason']}"
        )
        click.echo(f"        -> {r['action']}")


def _act(action: str, rec_id: int, username: str, comment: str | None, until: str | None) -> None:
    from alerting import recommendations as api
    from opsdash_core.db import warehouse

    user = _user(username)
    try:
        with warehouse() as conn:
            if action == "snooze":
                assert until is not None
                row = api.snooze(conn, rec_id, user, parse_until(until, datetime.now(UTC)), comment)
            elif action == "accept":
                row = api.accept(conn, rec_id, user, comment)
            else:
                row = api.dismiss(conn, rec_id, user, comment)
    except (PermissionDeniedError, api.RecommendationError) as exc:
        raise click.ClickException(str(exc) or f"{username} may not {action}") from exc
    suffix = f" until {row['snoozed_until']:%Y-%m-%d %H:%M} UTC" if row["snoozed_until"] else ""
    click.echo(f"recommendation #{rec_id} {row['status']}{suffix}")


USER_OPTION = click.option("--user", "username", required=True, help="App user who acts.")
COMMENT_OPTION = click.option("--comment", default=None, help="Why, for the history.")


@recs.command("accept")
@click.argument("rec_id", type=int)
@USER_OPTION
@COMMENT_OPTION
def accept_command(rec_id: int, username: str, comment: str | None) -> None:
    """The team takes it on."""
    _act("accept", rec_id, username, comment, None)


@recs.command("dismiss")
@click.argument("rec_id", type=int)
@USER_OPTION
@COMMENT_OPTION
def dismiss_command(rec_id: int, username: str, comment: str | None) -> None:
    """The team decides against it (say why)."""
    _act("dismiss", rec_id, username, comment, None)


@recs.command("snooze")
@click.argument("rec_id", type=int)
@USER_OPTION
@click.option("--until", required=True, help="12h, 3d, 1w or an ISO time (UTC).")
@COMMENT_OPTION
def snooze_command(rec_id: int, username: str, until: str, comment: str | None) -> None:
    """Hide it until a time; it comes back if its trigger still holds."""
    _act("snooze", rec_id, username, comment, until)


@recs.command("generate")
def generate_command() -> None:
    """Run one generation pass now (what the Dagster job does)."""
    from alerting.recommendations import generate_recommendations
    from opsdash_core.db import warehouse

    with warehouse() as conn:
        summary = generate_recommendations(conn)
    click.echo(summary.describe())

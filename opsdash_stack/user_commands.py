"""`opsdash users add|list|set-role|disable|enable|set-password`: dashboard accounts from a shell.

For incident response without raw SQL: disable a compromised account, change a role, reset a
password. The same `opsdash_core.accounts` functions as the app's Admin page, so the checks
(the last active admin can be neither demoted nor disabled) and the `app.audit_log` rows are
the same. Whoever can run this on the deployment's host is trusted like an admin; the actor in
the audit log is `--user` (default: the OS user).

Passwords are prompted for (twice, hidden) or read from stdin (`--password-stdin`), never taken
from the command line, where `ps` and the shell history would keep them.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import TypeVar

import click

from opsdash_core.settings import get_settings

T = TypeVar("T")
ROLES = ("admin", "operator", "viewer")
USER_HELP = "Name recorded as the actor in the audit log. Default: the OS user."
STDIN_HELP = "Read the password from the first line of stdin (scripts) instead of prompting."


def _actor(name: str | None) -> str:
    return name or getpass.getuser()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _run(change: Callable[..., T]) -> T:
    """Run one accounts change on a warehouse connection; its user-facing errors as CLI errors."""
    from opsdash_core.accounts import AuthError
    from opsdash_core.db import warehouse

    try:
        with warehouse() as conn:
            return change(conn)
    except AuthError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def users() -> None:
    """Manage dashboard users (bcrypt-hashed, roles admin/operator/viewer)."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="viewer")
@click.option("--password-stdin", is_flag=True, help=STDIN_HELP)
@click.option("--user", "actor", default=None, help=USER_HELP)
def users_add(username: str, role: str, password_stdin: bool, actor: str | None) -> None:
    """Create a user (audited)."""
    from opsdash_core import accounts

    password = _password(password_stdin)
    _run(lambda conn: accounts.create_user(conn, username, password, role, actor=_actor(actor)))
    click.echo(f"created {role} {username}")


@users.command("list")
def users_list() -> None:
    """List users and roles."""
    from opsdash_core.db import fetch_all

    rows = fetch_all(
        get_settings().warehouse_url,
        "select username, role, is_active, last_login_at from app.users order by username",
    )
    for r in rows:
        click.echo(
            f"{r['username']:<20} {r['role']:<9} active={r['is_active']} "
            f"last_login={r['last_login_at']}"
        )


@users.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@click.option("--user", "actor", default=None, help=USER_HELP)
def users_set_role(username: str, role: str, actor: str | None) -> None:
    """Change a user's role (audited); the last active admin cannot be demoted."""
    from opsdash_core import accounts

    user = _run(lambda conn: accounts.set_role(conn, username, role, actor=_actor(actor)))
    click.echo(f"{user.username} is now {user.role}")


@users.command("disable")
@click.argument("username")
@click.option("--user", "actor", default=None, help=USER_HELP)
def users_disable(username: str, actor: str | None) -> None:
    """Deactivate a user (audited): no new login, open sessions end within a minute."""
    from opsdash_core import accounts

    user = _run(lambda conn: accounts.set_active(conn, username, False, actor=_actor(actor)))
    click.echo(f"{user.username} is disabled")


@users.command("enable")
@click.argument("username")
@click.option("--user", "actor", default=None, help=USER_HELP)
def users_enable(username: str, actor: str | None) -> None:
    """Re-activate a disabled user (audited)."""
    from opsdash_core import accounts

    user = _run(lambda conn: accounts.set_active(conn, username, True, actor=_actor(actor)))
    click.echo(f"{user.username} is enabled")


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help=STDIN_HELP)
@click.option("--user", "actor", default=None, help=USER_HELP)
def users_set_password(username: str, password_stdin: bool, actor: str | None) -> None:
    """Reset a user's password (audited); it ends every session of that user."""
    from opsdash_core import accounts

    password = _password(password_stdin)
    _run(lambda conn: accounts.set_password(conn, username, password, actor=_actor(actor)))
    click.echo(f"password of {accounts.normalize_username(username)} changed")

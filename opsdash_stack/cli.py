"""`opsdash`: the one command-line entry point (services, simulator, users, models, pipeline)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from opsdash_core.settings import PROJECT_ROOT, get_settings, reset_settings
from opsdash_stack.envfile import ensure_env_file, load_into_environ


def _env_path() -> Path:
    return Path(os.environ.get("OPSDASH_ENV_FILE", PROJECT_ROOT / ".env"))


@click.group()
def main() -> None:
    """opsdash: the intelligent operations dashboard for the tutoring marketplace."""
    load_into_environ(_env_path())
    reset_settings()


@main.command()
@click.option("--scale", default=None, type=int, help="Simulated customers on first start.")
@click.option("--days", default=None, type=int, help="Days of simulated history on first start.")
@click.option("--port-offset", default=0, type=int, help="Shift every default port (tests).")
@click.option("--infra-only", is_flag=True, help="Only PostgreSQL, Redis and migrations.")
@click.option("--no-materialize", is_flag=True, help="Skip the first full materialization.")
def up(
    scale: int | None, days: int | None, port_offset: int, infra_only: bool, no_materialize: bool
) -> None:
    """Install-free part of `make up`: start every service and build the data once."""
    from opsdash_stack import lifecycle
    from opsdash_stack.probes import ServiceError

    env_path = _env_path()
    home = Path(os.environ.get("OPSDASH_HOME", env_path.parent / ".local"))
    if ensure_env_file(env_path, home, port_offset):
        click.echo(f"[opsdash] wrote defaults and generated secrets to {env_path}")
    load_into_environ(env_path)
    reset_settings()
    s = get_settings()
    scale = scale or int(os.environ.get("SCALE") or lifecycle.DEFAULT_SCALE)
    days = days or int(os.environ.get("DAYS") or lifecycle.DEFAULT_DAYS)
    try:
        if infra_only:
            lifecycle.infra_up(s)
        else:
            lifecycle.up(s, scale, days, materialize=not no_materialize)
    except ServiceError as exc:
        click.echo(f"[opsdash] ERROR: {exc}", err=True)
        sys.exit(1)


@main.command()
@click.option(
    "--purge",
    is_flag=True,
    help="Also delete this instance's PostgreSQL cluster (every database in it). As root the "
    "cluster lives outside OPSDASH_HOME (/var/lib/opsdash/<home>-<hash>), so removing the home "
    "alone leaves it behind.",
)
def down(purge: bool) -> None:
    """Stop every service opsdash started (by PID file); data stays unless --purge."""
    from opsdash_stack import lifecycle

    lifecycle.down(get_settings(), purge=purge)


@main.command()
def status() -> None:
    """Show which services run and where."""
    from opsdash_stack.services.catalog import status as service_status

    for name, state, where in service_status(get_settings()):
        click.echo(f"{name:<20} {state:<22} {where}")


@main.command()
def migrate() -> None:
    """Apply warehouse migrations (Alembic)."""
    from opsdash_stack import lifecycle

    lifecycle.migrate(get_settings())


@main.command()
def prepare() -> None:
    """Parse the dbt project so Dagster can load its manifest (part of `up`)."""
    from opsdash_stack import lifecycle

    lifecycle.prepare_dbt(get_settings())


def _mount_optional() -> None:
    """Sub-commands that live with the part they drive."""
    from opsdash_stack.user_commands import users

    main.add_command(users)
    from simulator.cli import sim

    main.add_command(sim)
    from opsdash_stack.sinks import sinks

    main.add_command(sinks)
    from opsdash_stack.model_commands import models

    main.add_command(models)
    from opsdash_stack.recommendation_commands import recs

    main.add_command(recs)
    from opsdash_stack.alert_commands import alerts

    main.add_command(alerts)
    from opsdash_stack.outbox_commands import outbox, watchdog

    main.add_command(outbox)
    main.add_command(watchdog)


_mount_optional()

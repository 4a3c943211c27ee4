"""`opsdash models promote|rollback|list`: manage the churn model aliases in MLflow."""

from __future__ import annotations

import click

from opsdash_core.settings import get_settings


@click.group()
def models() -> None:
    """Churn model registry (MLflow aliases champion/challenger)."""


@models.command("promote")
@click.argument("version")
@click.option("--name", default="churn_logreg", show_default=True)
def promote(version: str, name: str) -> None:
    """Make VERSION the champion."""
    from ml.registry import promote as _promote

    _promote(get_settings().mlflow_tracking_uri, name, version)
    click.echo(f"{name} v{version} is now champion")


@models.command("rollback")
@click.option("--name", default="churn_logreg", show_default=True)
def rollback(name: str) -> None:
    """Move champion back to the previous champion."""
    from ml.registry import rollback as _rollback

    version = _rollback(get_settings().mlflow_tracking_uri, name)
    click.echo(f"{name}: champion rolled back to v{version}")

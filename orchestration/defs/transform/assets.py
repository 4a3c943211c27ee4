"""dbt models as Dagster assets: staging -> intermediate -> marts, built with `dbt build`."""

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets
from pydantic import Field

from opsdash_core.dbt_env import dbt_env
from opsdash_core.rollups import refresh_continuous_aggregates
from opsdash_core.settings import get_settings
from orchestration.defs.resources import WarehouseResource
from orchestration.defs.transform.project import dbt_project
from orchestration.lib.dbt_translator import OpsdashDbtTranslator

# What the 5-minute cycle leaves to the daily check: tests whose cost grows with history, and
# the unit tests (they test SQL, which does not change between cycles).
LIGHT_CYCLE_EXCLUDES = ("tag:heavy", "test_type:unit")


class DbtBuildConfig(dg.Config):
    """How one run builds the dbt project."""

    full_refresh: bool = Field(
        default=False,
        description="Rebuild the incremental models from scratch (after a backfill of raw "
        "rows older than the late-arrival window). customer_health_history is kept.",
    )
    heavy_tests: bool = Field(
        default=True,
        description="Also run the tests that scan whole history (dbt tag `heavy`) and the "
        "dbt unit tests; the 5-minute cycle skips them and the daily check runs them.",
    )


def build_args(config: DbtBuildConfig) -> list[str]:
    """The `dbt` command line for one run."""
    args = ["build"]
    if config.full_refresh:
        args.append("--full-refresh")
    if not config.heavy_tests:
        # One argument: dagster-dbt moves extra positional words around the command line.
        args += ["--exclude", " ".join(LIGHT_CYCLE_EXCLUDES)]
    return args


@dbt_assets(
    manifest=dbt_project.manifest_path,
    dagster_dbt_translator=OpsdashDbtTranslator(),
    project=dbt_project,
)
def opsdash_dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config: DbtBuildConfig,
) -> Iterator[Any]:
    """Every dbt model and its tests; a failing test fails the step that owns the model.
    Incremental models pick up the raw rows ingested since their previous run."""
    settings = get_settings()
    os.environ.update(dbt_env(settings))
    yield from dbt.cli(build_args(config), context=context).stream()
    with warehouse.connect(autocommit=True) as conn:
        refreshed = refresh_continuous_aggregates(conn)
    if refreshed:
        context.log.info(f"refreshed continuous aggregates: {', '.join(refreshed)}")


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(
        project_dir=dbt_project, dbt_executable=str(Path(sys.executable).parent / "dbt")
    )

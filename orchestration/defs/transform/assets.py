"""dbt models as Dagster assets: staging -> intermediate -> marts, built with `dbt build`."""

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from opsdash_core.dbt_env import dbt_env
from opsdash_core.settings import get_settings
from orchestration.defs.transform.project import dbt_project
from orchestration.lib.dbt_translator import OpsdashDbtTranslator


@dbt_assets(
    manifest=dbt_project.manifest_path,
    dagster_dbt_translator=OpsdashDbtTranslator(),
    project=dbt_project,
)
def opsdash_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
    """Every dbt model and its tests; a failing test fails the step that owns the model."""
    os.environ.update(dbt_env(get_settings()))
    yield from dbt.cli(["build"], context=context).stream()


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(
        project_dir=dbt_project, dbt_executable=str(Path(sys.executable).parent / "dbt")
    )

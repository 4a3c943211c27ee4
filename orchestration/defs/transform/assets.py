"""dbt models as Dagster assets: staging -> intermediate -> marts, built with `dbt build`.

The specs come from the parsed manifest (lib/dbt_manifest.py), so loading the code location
never imports dbt or dagster-dbt; dbt runs as a child process inside the step.
"""

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from opsdash_core.refresh_events import publish_mart_refreshed
from opsdash_core.rollups import refresh_continuous_aggregates
from orchestration.defs.resources import WarehouseResource
from orchestration.defs.transform.project import MANIFEST_PATH
from orchestration.defs.transform.resources import DbtResource
from orchestration.lib.dbt_cli import DbtEvent, subset_selection, to_dagster_events
from orchestration.lib.dbt_manifest import build_specs, load_manifest

# What the 5-minute cycle leaves to the daily check: tests whose cost grows with history, and
# the unit tests (they test SQL, which does not change between cycles).
LIGHT_CYCLE_EXCLUDES = ("tag:heavy", "test_type:unit")

MANIFEST = load_manifest(MANIFEST_PATH)
DBT_SPECS = build_specs(MANIFEST)
# The checks behind the dbt tests the 5-minute cycle leaves out (LIGHT_CYCLE_EXCLUDES' tag):
# the cycle's jobs leave them out of their selection too, so a run neither plans them (Dagster
# writes one event per planned check when the run is created: ~40 ms each here) nor ends with
# them "not yielded".
HEAVY_CHECKS = tuple(
    key
    for key, unique_id in DBT_SPECS.unique_id_by_check.items()
    if "heavy" in MANIFEST["nodes"][unique_id].get("tags", [])
)
# The other dbt tests' checks, which the hourly light check reports (the cycle runs them
# without reporting the passing ones).
LIGHT_CHECKS = tuple(key for key in DBT_SPECS.unique_id_by_check if key not in HEAVY_CHECKS)


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
    tests: bool = Field(
        default=True,
        description="Run the dbt tests of the built models (OPSDASH_CYCLE_DBT_TESTS=hourly "
        "turns them off in the incremental cycle; check_marts_light runs them every hour).",
    )
    report_passing_tests: bool = Field(
        default=True,
        description="Report each test of the built models as its asset check. The cycle "
        "selects no dbt checks and sets this off: its tests still run after each model and a "
        "failing one still fails the step (and is logged as an observation of its model), "
        "but passing tests write no events; the hourly `check_marts_light` job reports them.",
    )


def build_args(config: DbtBuildConfig) -> list[str]:
    """The `dbt` command line for one run."""
    args = ["build"]
    if config.full_refresh:
        args.append("--full-refresh")
    excludes = [] if config.heavy_tests else list(LIGHT_CYCLE_EXCLUDES)
    if not config.tests:
        excludes.append("resource_type:test")
    if excludes:
        # One argument: dbt reads the space-separated selectors as a union.
        args += ["--exclude", " ".join(excludes)]
    return args


@dg.multi_asset(
    name="opsdash_dbt_models",
    specs=DBT_SPECS.assets,
    check_specs=DBT_SPECS.checks,
    can_subset=True,
    op_tags={"dagster_dbt/select": "fqn:*"},
    # One dbt build at a time, whichever run (a cycle, the daily check, an ad-hoc
    # materialization from the UI) it is in: the pool's limit is in dagster.yaml.
    pool="dbt",
)
def opsdash_dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtResource,
    warehouse: WarehouseResource,
    config: DbtBuildConfig,
) -> Iterator[DbtEvent]:
    """Every dbt model and its tests; a failing test fails the step that owns the model.
    Incremental models pick up the raw rows ingested since their previous run. A rebuilt
    marts/customer_health or marts/ops_kpis_daily is announced on the live-event stream."""
    checks = context.selected_asset_check_keys
    select, indirect = subset_selection(MANIFEST, DBT_SPECS, context.selected_asset_keys, checks)
    if not config.report_passing_tests and indirect:
        # The tests come with their models (every parent selected), not as selected checks.
        indirect = "cautious"
    env = {**warehouse.dbt_env(), **({"DBT_INDIRECT_SELECTION": indirect} if indirect else {})}
    label = f"{context.op.name}-{context.run.run_id[:7]}"
    for raw in dbt.stream([*build_args(config), *select], env, label):
        for event in to_dagster_events(
            raw, MANIFEST, checks, observe_passing=config.report_passing_tests
        ):
            yield event
            if isinstance(event, dg.MaterializeResult) and event.asset_key is not None:
                # dbt committed the model before printing its result: tell the app now, not
                # after the rest of the build (a later model's failure must not hide it).
                publish_mart_refreshed(
                    tuple(event.asset_key.path), context.run.run_id, warehouse.connect
                )
    with warehouse.connect(autocommit=True) as conn:
        refreshed = refresh_continuous_aggregates(conn)
    if refreshed:
        context.log.info(f"refreshed continuous aggregates: {', '.join(refreshed)}")

"""The dbt assets run through Dagster on real PostgreSQL: every model materialized with its
checks, a subset builds only what was selected, and a failing dbt test fails its check and the
step — also as the cycle runs them (no checks selected, passing tests unreported). A rebuilt
customer_health or ops_kpis_daily is announced on the live-event stream, Redis down or not."""

from __future__ import annotations

from typing import Any

import dagster as dg
import psycopg
import pytest

from opsdash_core import events
from opsdash_core.settings import reset_settings
from opsdash_stack.sinks import free_port
from orchestration.defs.resources import WarehouseResource
from orchestration.defs.transform.assets import DBT_SPECS, opsdash_dbt_models
from orchestration.defs.transform.resources import DbtResource

pytestmark = pytest.mark.integration

OP = opsdash_dbt_models.op.name
AVAILABILITY = dg.AssetKey(["staging", "stg_marketplace__tutor_availabilities"])
HEALTH = dg.AssetKey(["marts", "customer_health"])
KPIS = dg.AssetKey(["marts", "ops_kpis_daily"])
DAY_OF_WEEK_CHECK = next(
    c.key for c in DBT_SPECS.checks if c.asset_key == AVAILABILITY and "day_of_week" in c.name
)


def run(
    url: str,
    selection: list[dg.AssetKey] | dg.AssetSelection | None = None,
    *,
    heavy: bool = False,
    report: bool = True,
    tests: bool = True,
) -> dg.ExecuteInProcessResult:
    config = {"heavy_tests": heavy, "report_passing_tests": report, "tests": tests}
    return dg.materialize(
        [opsdash_dbt_models],
        selection=selection,
        resources={"warehouse": WarehouseResource(url=url), "dbt": DbtResource()},
        run_config={"ops": {OP: {"config": config}}},
        raise_on_error=False,
    )


def observed(result: dg.ExecuteInProcessResult) -> dict[dg.AssetKey, list[str]]:
    """Observations by asset: the tests that ran without their check selected."""
    out: dict[dg.AssetKey, list[str]] = {}
    for event in result.all_events:
        data = event.event_specific_data
        observation = getattr(data, "asset_observation", None)
        if observation is not None:
            out.setdefault(observation.asset_key, []).append(observation.metadata["status"].text)
    return out


def materialized(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


def checks(result: dg.ExecuteInProcessResult) -> dict[dg.AssetCheckKey, bool]:
    return {
        e.asset_check_key: e.passed
        for e in (ev.event_specific_data for ev in result.all_events)
        if isinstance(e, dg.AssetCheckEvaluation)
    }


def refresh_events(since: str) -> dict[str, list[dict[str, Any]]]:
    """The live events of refreshed data published after `since`, by type."""
    out: dict[str, list[dict[str, Any]]] = {}
    for event in events.read_since(since, count=1000):
        if event.type in ("customer_health_updated", "metric_update"):
            out.setdefault(event.type, []).append(event.data)
    return out


def test_dbt_assets_build_subset_and_fail_on_a_failing_test(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = events.latest_id()
    full = run(warehouse_url)
    assert full.success
    assert materialized(full) == set(DBT_SPECS.unique_id_by_key)
    # The app hears of the refreshed marts on the live-event stream, with this run's id.
    published = refresh_events(before)
    assert set(published) == {"customer_health_updated", "metric_update"}
    (health,) = published["customer_health_updated"]
    assert (health["run_id"], health["relation"]) == (full.run_id, "marts.customer_health")
    assert health["customers_refreshed"] == health["at_risk_refreshed"] == 0  # an empty source
    (kpis,) = published["metric_update"]
    assert (kpis["run_id"], kpis["relation"]) == (full.run_id, "marts.ops_kpis_daily")
    assert isinstance(kpis["days"], int)  # counted (0 days on an empty source)
    results = checks(full)
    assert DAY_OF_WEEK_CHECK in results
    assert all(results.values())

    subset = run(warehouse_url, [AVAILABILITY])
    assert subset.success
    assert materialized(subset) == {AVAILABILITY}
    assert {k.asset_key for k in checks(subset)} == {AVAILABILITY}

    # As the cycle runs: the models without their checks, tests run, passing ones unreported.
    availability_only = dg.AssetSelection.assets(AVAILABILITY).without_checks()
    quiet = run(warehouse_url, availability_only, report=False)
    assert quiet.success
    assert materialized(quiet) == {AVAILABILITY}
    assert checks(quiet) == {}
    assert observed(quiet) == {}

    # The live events are best effort: with Redis unreachable the marts that announce
    # themselves still build and the run succeeds.
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_settings()
    try:
        offline = run(warehouse_url, [HEALTH, KPIS], tests=False)
    finally:
        monkeypatch.delenv("REDIS_URL")
        reset_settings()
    assert offline.success
    assert materialized(offline) == {HEALTH, KPIS}

    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            "insert into raw.tutor_availabilities"
            " (id, tutor_id, day_of_week, start_hour, end_hour, created_at, updated_at)"
            " values (1, 1, 9, 8, 9, now(), now())"
        )
    failed = run(warehouse_url, [AVAILABILITY])
    assert not failed.success
    assert checks(failed)[DAY_OF_WEEK_CHECK] is False

    # The cycle's way: the failing test still fails the step, and shows on its model.
    quiet_failed = run(warehouse_url, availability_only, report=False)
    assert not quiet_failed.success
    assert checks(quiet_failed) == {}
    statuses = observed(quiet_failed)
    assert set(statuses) == {AVAILABILITY}
    assert "fail" in statuses[AVAILABILITY]
    assert "pass" not in statuses[AVAILABILITY]

    # OPSDASH_CYCLE_DBT_TESTS=hourly: the cycle builds the model and leaves the test to the
    # hourly job, so the same bad row does not stop it.
    untested = run(warehouse_url, availability_only, report=False, tests=False)
    assert untested.success
    assert materialized(untested) == {AVAILABILITY}
    assert observed(untested) == {}
    assert refresh_events(before) == published  # no mart with a live event was rebuilt

"""The dbt assets without dagster-dbt: specs read from a manifest, the dbt selection for a
subset run, and dbt's structured log turned into Dagster events."""

from __future__ import annotations

from typing import Any

import dagster as dg

from orchestration.lib.dbt_cli import subset_selection, to_dagster_events
from orchestration.lib.dbt_manifest import build_specs

RAW = dg.AssetKey(["raw", "customers"])
STG = dg.AssetKey(["staging", "stg_customers"])
MART = dg.AssetKey(["marts", "customer_health"])


def _model(name: str, schema: str, parents: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "unique_id": f"model.p.{name}",
        "resource_type": "model",
        "name": name,
        "schema": schema,
        "database": "ops",
        "alias": name,
        "package_name": "p",
        "fqn": ["p", schema, name],
        "description": f"One row per {name}.",
        "raw_code": f"select * from {name}",
        "config": {"materialized": "view", "meta": {}},
        "columns": {},
        "tags": [],
        "depends_on": {"nodes": parents},
        **extra,
    }


def _test(name: str, parents: list[str], attached: str | None, severity: str = "ERROR") -> Any:
    return {
        "unique_id": f"test.p.{name}",
        "resource_type": "test",
        "name": name,
        "package_name": "p",
        "fqn": ["p", name],
        "attached_node": attached,
        "config": {"severity": severity, "meta": {}},
        "depends_on": {"nodes": parents},
    }


def manifest() -> dict[str, Any]:
    source = {
        "unique_id": "source.p.raw.customers",
        "resource_type": "source",
        "source_name": "raw",
        "name": "customers",
        "schema": "raw",
        "database": "ops",
        "meta": {"dagster": {"asset_key": ["raw", "customers"]}},
        "config": {},
        "columns": {},
    }
    nodes = {
        "model.p.stg_customers": _model("stg_customers", "staging", [source["unique_id"]]),
        "model.p.customer_health": _model(
            "customer_health", "marts", ["model.p.stg_customers"], tags=["heavy"]
        ),
        "model.p.eph": _model("eph", "staging", [], config={"materialized": "ephemeral"}),
        "test.p.not_null_stg": _test(
            "not_null_stg", ["model.p.stg_customers"], "model.p.stg_customers"
        ),
        "test.p.in_range": _test("in_range", ["model.p.customer_health"], None, "warn"),
        "test.p.rel": _test(
            "rel", ["model.p.stg_customers", "model.p.customer_health"], "model.p.customer_health"
        ),
    }
    children: dict[str, list[str]] = {uid: [] for uid in [*nodes, source["unique_id"]]}
    parents = {uid: n["depends_on"]["nodes"] for uid, n in nodes.items()}
    for uid, ps in parents.items():
        for p in ps:
            children[p].append(uid)
    return {
        "metadata": {"adapter_type": "postgres", "project_name": "p", "project_id": "abc"},
        "nodes": nodes,
        "sources": {source["unique_id"]: source},
        "child_map": children,
        "parent_map": parents,
    }


def test_specs_mirror_the_relations_and_tests() -> None:
    specs = build_specs(manifest())
    by_key = {s.key: s for s in specs.assets}
    assert set(by_key) == {STG, MART}  # the ephemeral model is no asset
    assert by_key[STG].group_name == "staging"
    assert [d.asset_key for d in by_key[STG].deps] == [RAW]
    assert by_key[MART].tags["heavy"] == ""
    assert by_key[MART].kinds == {"dbt", "postgres"}
    assert by_key[MART].description.startswith("One row per customer_health.\n\n#### Raw SQL:")
    assert by_key[MART].metadata["dagster/table_name"] == "ops.marts.customer_health"
    checks = {c.key: c for c in specs.checks}
    assert set(checks) == {
        dg.AssetCheckKey(STG, "not_null_stg"),
        dg.AssetCheckKey(MART, "in_range"),  # singular: its only parent
        dg.AssetCheckKey(MART, "rel"),
    }
    assert checks[dg.AssetCheckKey(MART, "in_range")].blocking is False  # severity warn
    rel = checks[dg.AssetCheckKey(MART, "rel")]
    assert rel.blocking
    assert {d.asset_key for d in rel.additional_deps} == {STG}


def test_a_full_selection_uses_dbts_own() -> None:
    m = manifest()
    specs = build_specs(m)
    assert subset_selection(m, specs, {STG, MART}, set(specs.unique_id_by_check)) == ([], None)


def test_a_subset_lists_its_tests_and_never_runs_a_test_of_an_unbuilt_model() -> None:
    m = manifest()
    specs = build_specs(m)
    checks = {dg.AssetCheckKey(STG, "not_null_stg")}
    # `rel` also reads stg_customers, but tests customer_health, which this run does not build.
    assert subset_selection(m, specs, {STG}, checks) == (
        ["--select", "p.staging.stg_customers p.not_null_stg"],
        "empty",
    )


def test_a_left_out_check_lists_every_test_and_stops_indirect_selection() -> None:
    m = manifest()
    specs = build_specs(m)
    checks = {dg.AssetCheckKey(MART, "rel")}
    assert subset_selection(m, specs, {MART}, checks) == (
        ["--select", "p.marts.customer_health p.rel"],
        "empty",
    )


def test_a_check_alone_selects_its_test() -> None:
    m = manifest()
    specs = build_specs(m)
    only = {dg.AssetCheckKey(STG, "not_null_stg")}
    assert subset_selection(m, specs, set(), only) == (["--select", "p.not_null_stg"], "empty")


def _line(name: str, unique_id: str, status: str, **data: Any) -> dict[str, Any]:
    return {
        "info": {"name": name, "invocation_id": "inv-1", "msg": "...", "level": "info"},
        "data": {
            "node_info": {
                "unique_id": unique_id,
                "node_status": status,
                "node_started_at": "2026-11-30T10:00:00",
                "node_finished_at": "2026-11-30T10:00:02.5",
            },
            "status": status,
            **data,
        },
    }


def test_built_models_become_materializations() -> None:
    [event] = to_dagster_events(
        _line("LogModelResult", "model.p.stg_customers", "success"), manifest(), set()
    )
    assert isinstance(event, dg.MaterializeResult)
    assert event.asset_key == STG
    assert event.metadata == {
        "Execution Duration": 2.5,
        "unique_id": "model.p.stg_customers",
        "invocation_id": "inv-1",
        "status": "success",
    }
    failed = _line("LogModelResult", "model.p.stg_customers", "error")
    assert list(to_dagster_events(failed, manifest(), set())) == []


def test_selected_tests_become_check_results() -> None:
    selected = {dg.AssetCheckKey(MART, "in_range"), dg.AssetCheckKey(STG, "not_null_stg")}
    line = _line("LogTestResult", "test.p.in_range", "warn", num_failures=3)
    [warned] = to_dagster_events(line, manifest(), selected)
    assert isinstance(warned, dg.AssetCheckResult)
    assert (warned.asset_key, warned.check_name, warned.passed) == (MART, "in_range", False)
    assert warned.severity == dg.AssetCheckSeverity.WARN
    assert warned.metadata["dagster_dbt/failed_row_count"].value == 3
    [failed] = to_dagster_events(
        _line("LogTestResult", "test.p.not_null_stg", "fail", num_failures=1), manifest(), selected
    )
    assert isinstance(failed, dg.AssetCheckResult)
    assert not failed.passed
    assert failed.severity == dg.AssetCheckSeverity.ERROR
    [passed] = to_dagster_events(
        _line("LogTestResult", "test.p.not_null_stg", "pass"), manifest(), selected
    )
    assert isinstance(passed, dg.AssetCheckResult)
    assert passed.passed


def test_unselected_tests_are_observations_and_the_rest_is_silent() -> None:
    events = list(
        to_dagster_events(_line("LogTestResult", "test.p.rel", "pass"), manifest(), set())
    )
    assert {e.asset_key for e in events} == {STG, MART}
    assert all(isinstance(e, dg.AssetObservation) for e in events)
    skipped = _line("LogTestResult", "test.p.not_null_stg", "skipped")
    unit = _line("LogTestResult", "unit_test.p.stg_customers.t", "pass")
    other = _line("MainReportVersion", "model.p.stg_customers", "success")
    for line in (skipped, unit, other):
        assert list(to_dagster_events(line, manifest(), set())) == []

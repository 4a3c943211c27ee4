"""Snapshot of the code location: every asset (group, parents), asset check, job (what it
selects), schedule (cron) and sensor (interval). A rename, a new or lost asset, a changed
cadence or a moved lineage edge fails here and shows up in review as a diff of
`__snapshots__/test_definitions/test_code_location_snapshot.json`.

After an intended change: `.venv/bin/pytest tests/unit/test_definitions.py --snapshot-update`.
"""

import subprocess
import sys
from typing import Any

import dagster as dg
import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from orchestration.definitions import defs
from orchestration.lib.ingest.tables import TABLES


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def code_location() -> dict[str, Any]:
    """What the Dagster UI lists, in a stable, readable shape."""
    graph = defs.resolve_asset_graph()
    repo = defs.get_repository_def()
    assets = {
        key.to_user_string(): {
            "group": graph.get(key).group_name,
            "parents": sorted(k.to_user_string() for k in graph.get(key).parent_keys),
        }
        for key in graph.get_all_asset_keys()
    }
    checks = sorted(
        f"{spec.asset_key.to_user_string()}:{spec.name}" + ("" if spec.blocking else " (warn)")
        for assets_def in graph.assets_defs
        for spec in assets_def.check_specs
    )
    jobs = {}
    for job in repo.get_all_jobs():
        if job.name.startswith("__ASSET_JOB"):
            continue
        layer = job.asset_layer
        jobs[job.name] = {
            "assets": sorted(k.to_user_string() for k in layer.selected_asset_keys),
            "checks": len(set().union(*(d.assets_def.check_keys for d in layer.data))),
        }
    schedules = {
        s.name: {"job": s.job_name, "cron": s.cron_schedule, "status": s.default_status.value}
        for s in repo.schedule_defs
    }
    sensors = {
        s.name: {
            "interval_seconds": s.minimum_interval_seconds,
            "status": s.default_status.value,
            **(
                {"asset": s.asset_key.to_user_string()}
                if isinstance(s, dg.AssetSensorDefinition)
                else {}
            ),
        }
        for s in repo.sensor_defs
    }
    return {
        "assets": assets,
        "asset_checks": checks,
        "jobs": jobs,
        "schedules": schedules,
        "sensors": sensors,
    }


def test_code_location_snapshot(snapshot_json: SnapshotAssertion) -> None:
    assert code_location() == snapshot_json


def test_dbt_models_are_downstream_of_ingestion() -> None:
    graph = defs.resolve_asset_graph()
    upstream = graph.get(dg.AssetKey(["marts", "customer_health"])).parent_keys
    seen: set[dg.AssetKey] = set()
    stack = list(upstream)
    while stack:
        key = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        stack.extend(graph.get(key).parent_keys)
    assert dg.AssetKey(["raw", "sessions"]) in seen
    assert dg.AssetKey(["raw", "customers"]) in seen


def every_minutes(cron: str) -> int:
    """Minutes between runs of an every-N-minutes or hourly cron."""
    minute, hour, *_ = cron.split()
    if hour == "*" and minute == "*":
        return 1
    if hour == "*" and minute.startswith("*/"):
        return int(minute[2:])
    if hour == "*" and minute.isdigit():
        return 60
    raise ValueError(cron)


def test_ingestion_cadence_matches_the_tables() -> None:
    """Each raw table is in exactly one scheduled job, which runs every `cadence_minutes`."""
    repo = defs.get_repository_def()
    crons = {s.job_name: s.cron_schedule for s in repo.schedule_defs}
    scheduled = [j for j in repo.get_all_jobs() if j.name in crons]
    for spec in TABLES:
        key = dg.AssetKey(["raw", spec.name])
        runs = [crons[j.name] for j in scheduled if key in j.asset_layer.selected_asset_keys]
        assert [every_minutes(c) for c in runs] == [spec.cadence_minutes], spec.name


def test_code_location_import_avoids_heavy_libraries() -> None:
    code = (
        "import sys, orchestration.definitions;"
        "heavy = [m for m in ('mlflow', 'shap', 'prophet', 'great_expectations', 'sklearn',"
        " 'dagster_dbt', 'dbt', 'networkx', 'sqlglot', 'statsforecast') if m in sys.modules];"
        " print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_first_build_materializes_everything_and_runs_every_blocking_check() -> None:
    """The first build is what `opsdash up` waits for: every asset and every check that can
    block one, but not the warning-only suites nor the history-wide dbt tests (their hourly
    and daily jobs run them)."""
    from data_checks.suites import SUITES
    from orchestration.defs.transform.assets import HEAVY_CHECKS, LIGHT_CHECKS

    job = defs.resolve_job_def("first_build")
    graph = job.asset_layer.asset_graph
    assert set(graph.get_all_asset_keys()) == set(defs.resolve_asset_graph().get_all_asset_keys())
    planned = set(graph.asset_check_keys)
    suites = {dg.AssetCheckKey(dg.AssetKey(list(s.asset)), s.check): s for s in SUITES}
    assert {k for k, s in suites.items() if s.blocking} <= planned
    assert not {k for k, s in suites.items() if not s.blocking} & planned
    assert set(LIGHT_CHECKS) <= planned
    assert not set(HEAVY_CHECKS) & planned


def test_a_check_that_reads_another_table_runs_after_that_table_is_loaded() -> None:
    """In the first build the loads run side by side: the sessions' reference expectations
    once ran before raw/tutors was loaded and failed on every row."""
    graph = defs.resolve_asset_graph()
    key = dg.AssetCheckKey(dg.AssetKey(["raw", "sessions"]), "valid_batch")
    checks_def = next(a for a in graph.assets_defs if key in a.check_keys)
    parents = {k.to_user_string() for k in checks_def.keys_by_input_name.values()}
    assert {"raw/customers", "raw/subjects", "raw/tutors"} <= parents


def test_the_first_build_starts_the_calls_then_sessions_then_what_their_checks_read() -> None:
    """Three steps run at a time: the support API's backfill (longest, waits on the API), the
    sessions (the critical path), then the small dimensions the history tables' checks read,
    before the session requests. The dimensions started last once held the sessions' check
    31 s after its load had ended."""
    from orchestration.lib.ingest.tables import PRIORITY_TAG

    graph = defs.resolve_asset_graph()

    def priority(table: str) -> int:
        node = graph.get(dg.AssetKey(["raw", table]))
        return int(node.assets_def.op.tags[PRIORITY_TAG])

    def check_priority(table: str) -> int:
        key = dg.AssetCheckKey(dg.AssetKey(["raw", table]), "valid_batch")
        checks_def = next(a for a in graph.assets_defs if key in a.check_keys)
        return int(checks_def.op.tags[PRIORITY_TAG])

    dimensions = [t.name for t in TABLES if t.cadence == "hourly"]
    assert priority("inbound_calls") > priority("sessions")
    assert all(priority("sessions") > priority(d) for d in dimensions)
    assert all(priority(d) > priority("session_requests") for d in dimensions)
    # the sessions' check as soon as it can; the dimensions' quick checks after every load
    assert check_priority("sessions") == priority("sessions")
    assert all(check_priority(d) < priority("session_requests") for d in dimensions)

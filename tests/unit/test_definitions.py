"""Snapshot of the code location: a renamed asset, job, schedule or sensor shows up in review."""

import subprocess
import sys

import dagster as dg

from orchestration.definitions import defs

EXPECTED_RAW = {
    "raw/customers",
    "raw/tutors",
    "raw/subjects",
    "raw/tutor_subjects",
    "raw/tutor_availabilities",
    "raw/session_requests",
    "raw/sessions",
    "raw/inbound_calls",
}


def asset_keys() -> set[str]:
    return {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}


def test_every_layer_is_an_asset() -> None:
    keys = asset_keys()
    assert keys >= EXPECTED_RAW
    assert {"marts/customer_health", "ml/churn_model", "ml/churn_scores"} <= keys
    assert any(k.startswith("staging/stg_") for k in keys)


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


def test_jobs_schedules_and_sensors() -> None:
    schedules = {s.name: s.cron_schedule for s in defs.schedules}
    assert schedules["incremental_cycle_schedule"] == "*/5 * * * *"
    assert schedules["ingest_support_calls_schedule"] == "*/15 * * * *"
    assert schedules["ingest_dimensions_schedule"].endswith(" * * * *")
    assert {s.name for s in defs.sensors} >= {"customer_critical_alert_sensor"}


def test_code_location_import_avoids_heavy_libraries() -> None:
    code = (
        "import sys, orchestration.definitions;"
        "heavy = [m for m in ('mlflow', 'shap', 'prophet', 'great_expectations', 'sklearn')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

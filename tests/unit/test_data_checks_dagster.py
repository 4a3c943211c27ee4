"""The Dagster side of the quality domain: definitions, blocking flags, metadata, load facts."""

from datetime import UTC, datetime

import dagster as dg

from data_checks import SUITES
from data_checks.result import CheckResult, ExpectationOutcome
from data_checks.suite_types import Bounds, Severity
from orchestration.defs.ingestion import defs as ingestion_defs
from orchestration.defs.quality import defs as quality_defs
from orchestration.defs.quality.checks import (
    QUALITY_CHECKS,
    blocking_check_keys,
    describe,
    load_facts,
    to_check_result,
)
from orchestration.defs.resources import shared_resources

SESSIONS = dg.AssetKey(["raw", "sessions"])
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_one_check_per_suite_blocking_exactly_when_error_severity() -> None:
    specs = {spec.key: spec for c in QUALITY_CHECKS for spec in c.check_specs}
    assert len(specs) == len(SUITES)
    for suite in SUITES:
        spec = specs[dg.AssetCheckKey(dg.AssetKey(list(suite.asset)), suite.check)]
        assert spec.blocking is (suite.severity is Severity.ERROR)
        assert spec.description
        assert spec.description == describe(suite)


def test_blocking_checks_run_in_one_step_per_history_table_and_one_for_the_dimensions() -> None:
    """Fewer steps for the first build to start: the blocking checks of a history table share a
    step, the five dimensions' share one; each warning suite stays a step of its own."""
    steps = {
        c.node_def.name: {(k.asset_key.path[-1], k.name) for k in c.check_keys}
        for c in QUALITY_CHECKS
    }
    blocking = {"valid_batch", "quarantine_rate"}
    dimensions = {"customers", "tutors", "subjects", "tutor_subjects", "tutor_availabilities"}
    assert steps["raw__dimension_checks"] == {(t, c) for t in dimensions for c in blocking}
    for table in ("sessions", "session_requests", "inbound_calls"):
        assert steps[f"raw__{table}_checks"] == {(table, c) for c in blocking}
        assert steps[f"raw__{table}_trends"] == {(table, "trends")}
    assert len(steps) == 8


def test_great_expectations_checks_only_the_raw_tables() -> None:
    """The marts' rules are dbt tests (one owner per rule): no GE check is bound to a mart."""
    assets = {key.asset_key for c in QUALITY_CHECKS for key in c.check_keys}
    assert {a.path[0] for a in assets} == {"raw"}
    assert len(assets) == 8


def test_definitions_load_next_to_the_ingestion_domain() -> None:
    merged = dg.Definitions.merge(
        ingestion_defs, quality_defs, dg.Definitions(resources=shared_resources())
    )
    graph = merged.resolve_asset_graph()
    assert {
        dg.AssetCheckKey(SESSIONS, "valid_batch"),
        dg.AssetCheckKey(SESSIONS, "quarantine_rate"),
        dg.AssetCheckKey(SESSIONS, "trends"),
    } <= set(graph.asset_check_keys)
    assert merged.resolve_implicit_global_asset_job_def() is not None


def test_blocking_check_keys_of_an_asset() -> None:
    assert sorted(k.name for k in blocking_check_keys([SESSIONS])) == [
        "quarantine_rate",
        "valid_batch",
    ]


def test_check_result_carries_severity_summary_and_samples() -> None:
    bad = ExpectationOutcome(
        "unexpected_rows_expectation",
        "tutor_id references raw.tutors.id",
        "tutor_id",
        False,
        observed=2,
        sample=[{"id": 7, "tutor_id": 999}],
    )
    res = CheckResult(
        suite="raw_sessions__valid_batch",
        check="valid_batch",
        asset="raw/sessions",
        severity=Severity.ERROR,
        success=False,
        outcomes=(bad,),
        window=Bounds("_ingested_at", None, T0, rows=12),
        checked_at=T0,
        seconds=0.3,
        run_id="run-1",
        data_docs="file:///tmp/x.html",
    )
    out = to_check_result(res)
    assert not out.passed
    assert out.severity == dg.AssetCheckSeverity.ERROR
    assert out.description is not None
    assert out.description.startswith("1 of 1 expectations failed")
    meta = out.metadata
    assert meta["failed_expectations"].value == 1
    assert meta["rows_checked"].value == 12
    assert meta["observed_values"].value == {"tutor_id references raw.tutors.id": 2}
    assert meta["sample_bad_rows"].value == {
        "tutor_id references raw.tutors.id": [{"id": 7, "tutor_id": 999}]
    }
    assert meta["data_docs"].value == "file:///tmp/x.html"


def test_load_facts_come_from_the_latest_materialization() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        assert load_facts(instance, SESSIONS, "this-run") is None
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                SESSIONS, metadata={"rows_read": 25, "rows_quarantined": 4, "watermark": "x"}
            )
        )
        facts = load_facts(instance, SESSIONS, "this-run")
    assert facts is not None
    assert (facts.rows_read, facts.rows_quarantined) == (25, 4)

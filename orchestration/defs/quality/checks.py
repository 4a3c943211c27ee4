"""Every data_checks suite as a Dagster asset check on its asset (one factory, no copies); the
blocking suites of the raw tables share steps (see `build_quality_checks`).

`error` suites are `blocking=True` and fail with ERROR severity, so in a run that also builds
downstream assets (e.g. raw/sessions -> dbt models) those are skipped and keep their last good
state; `warn` suites report but never block. Every run is recorded in `quality.check_runs` /
`check_results`; the alert engine's `check_failed` (blocking) and `check_warning` rules read
them on the next minute's tick and raise, notify and later resolve one alert per failing
check, so a failure reaches people by the same path as every other alert.

Great Expectations is imported inside `data_checks` on the first check a process runs, never
when this module loads. A run tagged `opsdash/check_engine: sql` (the incremental cycle)
evaluates its `valid_batch` and `quarantine_rate` suites as one SQL statement each, compiled
from the same specs (data_checks/sql_checks.py, same verdicts), and so never imports GX; every
other run, and the `trends` suites, go through GX, which renders Data Docs.
"""

# No `from __future__ import annotations`: Dagster reads the context/resource annotations.

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import dagster as dg

from data_checks import SUITES, CheckResult, LoadFacts, Suite, run_check
from data_checks.integrity import References
from data_checks.report import markdown, samples, summary
from data_checks.suite_types import LoadRun, Severity
from orchestration.defs.resources import WarehouseResource
from orchestration.lib.ingest.tables import BY_NAME as TABLES_BY_NAME
from orchestration.lib.ingest.tables import PRIORITY_TAG, step_tags

ENGINE_TAG = "opsdash/check_engine"
SEVERITY = {Severity.ERROR: dg.AssetCheckSeverity.ERROR, Severity.WARN: dg.AssetCheckSeverity.WARN}


def load_facts(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, run_id: str
) -> LoadFacts | None:
    """The latest load of `asset_key` as its ingestion asset reported it.

    In the run that just loaded the table, that is this run's materialization; a check
    executed on its own judges the table's latest load.
    """
    event = instance.get_latest_materialization_event(asset_key)
    mat = event.asset_materialization if event else None
    if event is None or mat is None:
        return None

    def _int(name: str) -> int | None:
        value = mat.metadata.get(name)
        raw = getattr(value, "value", None)
        return int(raw) if isinstance(raw, int | float) else None

    rows_read = _int("rows_read")
    if rows_read is None:
        return None
    return LoadFacts(event.run_id or run_id, rows_read, _int("rows_quarantined"))


def check_metadata(result: CheckResult) -> dict[str, dg.MetadataValue]:
    """What the Dagster UI shows on the check evaluation."""
    meta: dict[str, dg.MetadataValue] = {
        "summary": dg.MetadataValue.md(markdown(result)),
        "expectations": dg.MetadataValue.int(len(result.outcomes)),
        "failed_expectations": dg.MetadataValue.int(len(result.failures)),
        "window": dg.MetadataValue.text(result.window.describe()),
        "seconds": dg.MetadataValue.float(round(result.seconds, 3)),
    }
    if result.window.rows is not None:
        meta["rows_checked"] = dg.MetadataValue.int(result.window.rows)
    if result.failures:
        meta["observed_values"] = dg.MetadataValue.json(
            {o.label: o.observed if o.error is None else o.error for o in result.failures}
        )
    bad_rows = samples(result)
    if bad_rows:
        meta["sample_bad_rows"] = dg.MetadataValue.json(bad_rows)
    if result.skipped:
        meta["skipped"] = dg.MetadataValue.json(list(result.skipped))
    if result.data_docs:
        meta["data_docs"] = dg.MetadataValue.url(result.data_docs)
    return meta


def to_check_result(
    result: CheckResult, asset_key: dg.AssetKey | None = None, check_name: str | None = None
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=check_name,
        passed=result.success,
        severity=SEVERITY[result.severity],
        description=summary(result)[:2000],
        metadata=check_metadata(result),
    )


def describe(suite: Suite) -> str:
    """The check's description in the UI: what it guards and every expectation in it."""
    effect = "Blocks downstream assets when it fails." if suite.blocking else "Warns only."
    lines = [f"{suite.description} {effect}", "", f"Reads {suite.relation_name}; expectations:"]
    lines += [f"- {spec.label}" for spec in suite.specs]
    return "\n".join(lines)


def referenced_assets(suite: Suite) -> list[dg.AssetKey]:
    """The other tables a suite's reference expectations read: the check depends on them, so a
    run that loads them too (the first build, steps side by side) checks only after they are
    loaded, instead of finding every reference missing."""
    targets = {
        spec.target
        for spec in suite.specs
        if isinstance(spec, References) and spec.target != suite.relation
    }
    return [dg.AssetKey(list(t)) for t in sorted(targets)]


def _evaluate(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, suite: Suite
) -> dg.AssetCheckResult:
    asset_key = dg.AssetKey(list(suite.asset))
    run_id = context.run.run_id
    facts = None
    if isinstance(suite.window, LoadRun):
        facts = load_facts(context.instance, asset_key, run_id)
    engine = context.run.tags.get(ENGINE_TAG, "gx")
    run = run_check(warehouse.resolved_url(), suite, run_id=run_id, facts=facts, engine=engine)
    return to_check_result(run.result, asset_key, suite.check)


def check_spec(suite: Suite) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        suite.check,
        asset=dg.AssetKey(list(suite.asset)),
        blocking=suite.blocking,
        additional_deps=referenced_assets(suite),
        description=describe(suite),
        metadata={"suite": suite.name, "severity": str(suite.severity)},
    )


def build_quality_checks(name: str, suites: Sequence[Suite]) -> dg.AssetChecksDefinition:
    """One step evaluating `suites` (those the run selects), each reported as its own check.

    The blocking suites of a table share a step, and those of the five dimension tables one
    step for all: each step of the first build costs ~3 s to start beside the loads, and the
    sessions' check waits for every dimension's checks (its references must hold first); as
    fourteen one-second steps they held it 30 s at S10. A suite that raises does not stop the
    others: their verdicts are reported, then the step fails."""
    tables = {s.asset[1] for s in suites if s.asset[0] == "raw"}
    priorities = [step_tags(t, check=True) for t in sorted(tables)]
    tags = min(priorities, key=lambda t: int(t[PRIORITY_TAG])) if priorities else None

    @dg.multi_asset_check(
        name=name,
        specs=[check_spec(s) for s in suites],
        can_subset=True,
        op_tags=tags,
    )
    def _checks(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.AssetCheckResult]:
        selected = context.selected_asset_check_keys
        errors: list[BaseException] = []
        for suite in suites:
            if dg.AssetCheckKey(dg.AssetKey(list(suite.asset)), suite.check) not in selected:
                continue
            try:
                yield _evaluate(context, warehouse, suite)
            except Exception as exc:  # re-raised below, after the others
                context.log.error(f"{suite.name} could not be evaluated: {exc!r}")
                errors.append(exc)
        if errors:
            raise errors[0]

    return _checks


def _groups() -> list[tuple[str, list[Suite]]]:
    """The blocking suites of the raw tables by step (the dimensions together, each history
    table apart); every other suite (the `trends` warnings, GX's) is a step of its own."""
    groups: dict[str, list[Suite]] = {}
    for suite in SUITES:
        if suite.blocking and suite.asset[0] == "raw":
            spec = TABLES_BY_NAME[suite.asset[1]]
            name = (
                "raw__dimension_checks" if spec.cadence == "hourly" else f"raw__{spec.name}_checks"
            )
        else:
            name = f"{'__'.join(suite.asset)}_{suite.check}"
        groups.setdefault(name, []).append(suite)
    return list(groups.items())


QUALITY_CHECKS: list[dg.AssetChecksDefinition] = [
    build_quality_checks(name, suites) for name, suites in _groups()
]


def warning_checks(tables: Iterable[str] | None = None) -> dg.AssetSelection:
    """The warning-only suites (`trends`) of the raw `tables`, or of every asset: what the
    jobs that come every few minutes, and the first build, leave to the hourly GX jobs."""
    wanted = None if tables is None else {("raw", t) for t in tables}
    return dg.AssetSelection.checks(
        *[
            dg.AssetCheckKey(dg.AssetKey(list(s.asset)), s.check)
            for s in SUITES
            if not s.blocking and (wanted is None or s.asset in wanted)
        ]
    )


def blocking_check_keys(asset_keys: Iterable[dg.AssetKey]) -> list[dg.AssetCheckKey]:
    wanted = set(asset_keys)
    return [
        dg.AssetCheckKey(dg.AssetKey(list(s.asset)), s.check)
        for s in SUITES
        if s.blocking and dg.AssetKey(list(s.asset)) in wanted
    ]


def failed_blocking_checks(
    instance: dg.DagsterInstance, asset_keys: Iterable[dg.AssetKey]
) -> list[dg.AssetCheckKey]:
    """Blocking checks on `asset_keys` whose latest evaluation failed.

    Blocking only stops downstream steps in the same run; a job that builds the marts in a
    separate run (e.g. a schedule) can call this first and skip while raw data is held back.
    """
    keys = blocking_check_keys(asset_keys)
    latest: Mapping[dg.AssetCheckKey, Any] = (
        instance.event_log_storage.get_latest_asset_check_execution_by_key(keys) if keys else {}
    )
    failed: Sequence[dg.AssetCheckKey] = [
        key for key, record in latest.items() if getattr(record.status, "value", "") == "FAILED"
    ]
    return sorted(failed, key=lambda k: k.to_user_string())

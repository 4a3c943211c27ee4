"""Run one suite against the warehouse with Great Expectations and return a `CheckResult`.

    result = validate(warehouse_url, BY_NAME["raw_sessions__valid_batch"], run_id=...)

Steps: resolve the window and the values set-level expectations need (plain SQL, fast), build
the suite's GX expectations, validate the table in one GX run, fetch a few offending rows for
each failure, render the Data Docs page. `run_check` adds the warehouse history, which the
alert engine's `check_failed`/`check_warning` rules read to alert and notify (the one path for
notifications). GX is imported on the first call in a process and reused afterwards.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from data_checks import docs, result_history
from data_checks.expectations import jsonable
from data_checks.gx_api import load_gx_api
from data_checks.result import CheckResult, ExpectationOutcome
from data_checks.suite_types import LoadFacts, Spec, Suite, ValidationContext
from data_checks.windows import (
    FROM_HISTORY,
    SAMPLE_SIZE,
    _FromHistory,
    _unreadable,
    prepare_suite,
)
from opsdash_core.db import connect
from opsdash_core.settings import get_settings


def _observed(result: dict[str, Any]) -> Any:
    if "observed_value" in result:
        return jsonable(result["observed_value"])
    keys = ("unexpected_count", "unexpected_percent", "partial_unexpected_list")
    return jsonable({k: result[k] for k in keys if k in result})


def _exception_message(info: dict[str, Any]) -> str | None:
    """GX reports an error either flat or nested per failed metric."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _outcome(
    spec: Spec, res: dict[str, Any], prepared: dict[str, Any], sample: list[dict[str, Any]]
) -> ExpectationOutcome:
    result = res.get("result") or {}
    exc = res.get("exception_info") or {}
    observed = _observed(result)
    observe = getattr(spec, "observe", None)
    if observe is not None:
        observed = jsonable(observe(observed, prepared))
    error = _exception_message(exc)
    return ExpectationOutcome(
        expectation=res["expectation_config"]["type"],
        label=spec.label,
        column=spec.column,
        success=bool(res.get("success")) and error is None,
        observed=observed,
        unexpected_count=result.get("unexpected_count"),
        element_count=result.get("element_count"),
        sample=sample,
        details=jsonable({k: v for k, v in prepared.items() if k != "skipped"}),
        error=error,
    )


def _result_key(suite_name: str, batch_id: str, run: Any) -> Any:
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    return ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=run,
        batch_identifier=batch_id,
    )


def _run_gx(
    url: str,
    suite: Suite,
    ctx: ValidationContext,
    home: Path,
    expectations: list[tuple[int, Any]],
    run_name: str,
) -> tuple[list[dict[str, Any]], Any]:
    """One GX validation of the whole suite; returns the results (as dicts) and the key of the
    stored validation result."""
    gx = load_gx_api().module
    gctx = docs.context(home)
    # Suites change every run (window bounds, trailing averages): replace, never merge --
    # `add_or_update` compares every expectation pairwise and saves each one separately.
    gx_suite = gx.ExpectationSuite(name=suite.name, expectations=[e for _i, e in expectations])
    with contextlib.suppress(gx.exceptions.DataContextError):
        gctx.suites.delete(suite.name)
    gx_suite = gctx.suites.add(gx_suite)
    batch = docs.batch_definition(home, url, suite.relation)
    with contextlib.suppress(gx.exceptions.DataContextError):
        gctx.validation_definitions.delete(suite.name)
    vd = gctx.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=gx_suite)
    )
    from great_expectations.core.run_identifier import RunIdentifier

    run = RunIdentifier(run_name=run_name, run_time=ctx.now)
    out = vd.run(
        run_id=run,
        result_format={
            "result_format": "SUMMARY",
            "unexpected_index_column_names": list(suite.key),
            "partial_unexpected_count": SAMPLE_SIZE,
        },
    )
    results = [r.to_json_dict() for r in out.results]
    batch_id = next(
        (r["expectation_config"]["kwargs"].get("batch_id") for r in results), None
    ) or out.meta.get("active_batch_definition", {}).get("batch_identifier", "")
    return results, _result_key(suite.name, str(batch_id), run)


def _build(
    suite: Suite, ctx: ValidationContext, prepared: list[dict[str, Any]]
) -> tuple[list, list[str]]:
    """The GX expectations of the suite, and notes on the specs that had too little data."""
    gx = load_gx_api()
    expectations: list[tuple[int, Any]] = []
    skipped: list[str] = []
    for i, (spec, prep) in enumerate(zip(suite.specs, prepared, strict=True)):
        exp = spec.build(gx, ctx, prep)
        if exp is None:
            skipped.append(f"{spec.label}: {prep.get('skipped', 'not applicable')}")
            continue
        exp.meta = {"opsdash_spec": i}
        exp.severity = suite.severity.gx
        exp.description = spec.label
        expectations.append((i, exp))
    return expectations, skipped


def _outcomes(
    url: str, ctx: ValidationContext, prepared: list[dict[str, Any]], results: list[dict[str, Any]]
) -> list[ExpectationOutcome]:
    """GX results as outcomes, with a few offending rows fetched for each failure."""
    suite = ctx.suite
    outcomes = []
    with connect(url) as conn:
        for res in results:
            i = int(res["expectation_config"]["meta"]["opsdash_spec"])
            spec, prep = suite.specs[i], prepared[i]
            sample: list[dict[str, Any]] = []
            if not res.get("success"):
                try:
                    sample = spec.sample(conn, ctx, res.get("result") or {}, SAMPLE_SIZE)
                except psycopg.Error as exc:
                    conn.rollback()
                    sample = [{"sample_error": str(exc)}]
            outcomes.append(_outcome(spec, res, prep, sample))
    return outcomes


def validate(
    url: str,
    suite: Suite,
    *,
    run_id: str | None = None,
    facts: LoadFacts | None = None,
    since: datetime | _FromHistory | None = FROM_HISTORY,
    home: Path | None = None,
    data_docs: bool = True,
) -> CheckResult:
    """Validate `suite` against the warehouse at `url`.

    `since` overrides the start of a `NewRows` window (None = every row); by default it is the
    end of the previous recorded run of the same check. `facts` describes the load a
    `quarantine_rate` suite judges. Nothing is written to the warehouse (see `run_check`).
    """
    started = time.monotonic()
    home = home or get_settings().opsdash_home
    outcomes: list[ExpectationOutcome] = []
    skipped: list[str] = []
    page: str | None = None
    with connect(url) as conn:
        ready = prepare_suite(conn, suite, since, facts)
        now, ctx, window, empty, prepared = (
            ready.now,
            ready.ctx,
            ready.ctx.window,
            ready.empty,
            ready.prepared,
        )
        outcomes.extend(ready.outcomes)
    if empty:
        skipped.append("no new rows since the last check")
    elif prepared:
        expectations, skipped = _build(suite, ctx, prepared)
        if expectations:
            try:
                results, key = _run_gx(url, suite, ctx, home, expectations, run_id or "manual")
            except Exception as exc:  # GX could not read the table: a failed check
                outcomes.append(_unreadable(suite, exc))
            else:
                outcomes = _outcomes(url, ctx, prepared, results)
                if data_docs:
                    page = docs.build_page(home, key, suite.name)
                    docs.prune(home, suite.name)
    outcomes.sort(key=lambda o: (o.success, o.label))
    return CheckResult(
        suite=suite.name,
        check=suite.check,
        asset=suite.asset_path,
        severity=suite.severity,
        success=all(o.success for o in outcomes),
        outcomes=tuple(outcomes),
        window=window,
        checked_at=now,
        seconds=time.monotonic() - started,
        run_id=run_id,
        skipped=tuple(skipped),
        data_docs=page,
        key=suite.key,
    )


@dataclass(frozen=True)
class CheckRun:
    """A recorded check: the result and its `quality.check_runs` row."""

    result: CheckResult
    check_run_id: int


def run_check(
    url: str,
    suite: Suite,
    *,
    run_id: str | None = None,
    facts: LoadFacts | None = None,
    home: Path | None = None,
    data_docs: bool = True,
    engine: str = "gx",
) -> CheckRun:
    """Validate, then record the result and its expectations in one transaction.

    `engine="sql"` evaluates a suite that has a SQL form (`sql_checks.compilable`: the
    `valid_batch` and `quarantine_rate` suites) in one statement without importing GX, as the
    incremental cycle does; other suites, and `engine="gx"`, run through GX with Data Docs.

    Nothing is sent from here: the alert engine's `check_failed` (blocking) and `check_warning`
    rules read `quality.check_runs`/`check_results` every minute and raise one alert per failing
    check, notified, repeated and resolved like every other alert."""
    from data_checks import sql_checks

    if engine == "sql" and sql_checks.compilable(suite):
        result = sql_checks.validate_sql(url, suite, run_id=run_id, facts=facts)
    else:
        result = validate(url, suite, run_id=run_id, facts=facts, home=home, data_docs=data_docs)
    with connect(url) as conn:
        pk = result_history.record(conn, result)
    return CheckRun(result, pk)

"""Running `dbt build` for a (subset of the) dbt assets and reporting its results to Dagster.

dbt runs as a child process with JSON logs (`DBT_LOG_FORMAT=json`); each node's result line
becomes an event as soon as dbt prints it:
- a model built (`success`, `no-op`, `reused`, `warn`) -> a materialization of its asset;
- a test that ran -> the result of its asset check, when the run selected that check
  (otherwise, e.g. a relationship test dbt ran on a neighbour, an observation of its parents);
- unit tests and skipped nodes report nothing.
A non-zero exit fails the step after every event is reported. This mirrors dagster-dbt's
`DbtCliResource.cli(...).stream()`, which we no longer import (see dbt_manifest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Set
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg

from orchestration.lib.dbt_manifest import (
    ASSET_RESOURCE_TYPES,
    DbtSpecs,
    asset_key,
    attached_node,
    node,
)

RESULT_EVENTS = frozenset({"LogSeedResult", "LogModelResult", "LogSnapshotResult", "LogTestResult"})
BUILT = frozenset({"success", "no-op", "reused", "warn"})
# dbt reads this to decide which tests follow the selected models (`eager` by default).
INDIRECT_SELECTION = "DBT_INDIRECT_SELECTION"

DbtEvent = dg.MaterializeResult | dg.AssetCheckResult | dg.AssetObservation


def subset_selection(
    manifest: Mapping[str, Any],
    specs: DbtSpecs,
    assets: Set[dg.AssetKey],
    checks: Set[dg.AssetCheckKey],
) -> tuple[list[str], str | None]:
    """The `--select` arguments and DBT_INDIRECT_SELECTION value for the selected assets and
    checks; none when the run selects everything (dbt's default selection then applies).

    Models and tests are both listed by fully qualified name and indirect selection is off:
    left to dbt's eager default, a test with several parents (a `relationships` test) would
    run as soon as one parent is selected, against a model this run does not build.
    """
    if set(assets) == set(specs.unique_id_by_key) and set(checks) == set(specs.unique_id_by_check):
        return [], None

    def fqn(unique_id: str) -> str:
        return ".".join(node(manifest, unique_id)["fqn"])

    resources = [fqn(specs.unique_id_by_key[k]) for k in sorted(assets, key=str)]
    resources += [fqn(specs.unique_id_by_check[c]) for c in sorted(checks, key=str)]
    return ["--select", " ".join(resources)], "empty"


def _metadata(raw: Mapping[str, Any]) -> dict[str, Any]:
    data, info = raw["data"], raw["data"]["node_info"]
    status = info.get("node_status") or data.get("status", "").lower()
    started, finished = info.get("node_started_at"), info.get("node_finished_at")
    if started and finished:
        duration = (
            datetime.fromisoformat(finished) - datetime.fromisoformat(started)
        ).total_seconds()
    else:
        duration = data.get("execution_time")
    return {
        **({"Execution Duration": duration} if duration else {}),
        "unique_id": info["unique_id"],
        "invocation_id": raw["info"]["invocation_id"],
        "status": status,
    }


def to_dagster_events(
    raw: Mapping[str, Any],
    manifest: Mapping[str, Any],
    checks: Set[dg.AssetCheckKey],
    observe_passing: bool = True,
) -> Iterator[DbtEvent]:
    """The Dagster events for one structured dbt log line (most lines have none).
    `observe_passing=False`: a test whose check the run did not select reports only when it
    did not pass (a passing one writes no event)."""
    info = raw.get("data", {}).get("node_info") or {}
    unique_id = info.get("unique_id")
    if raw.get("info", {}).get("name") not in RESULT_EVENTS or not unique_id:
        return
    props = manifest["nodes"].get(unique_id)
    if props is None or unique_id.startswith("unit_test"):
        return
    meta = _metadata(raw)
    status = meta["status"]
    materialized = info.get("materialized") or props.get("config", {}).get("materialized")
    if props["resource_type"] in ASSET_RESOURCE_TYPES and materialized != "ephemeral":
        if status in BUILT:
            yield dg.MaterializeResult(asset_key=asset_key(props), metadata=meta)
        return
    if props["resource_type"] != "test" or status == "skipped":
        return
    failures = raw["data"].get("num_failures")
    if failures is not None:
        meta["dagster_dbt/failed_row_count"] = failures
    attached = attached_node(manifest, props)
    key = dg.AssetCheckKey(asset_key(node(manifest, attached)), props["name"]) if attached else None
    if key is not None and key in checks:
        yield dg.AssetCheckResult(
            asset_key=key.asset_key,
            check_name=key.name,
            passed=status == "pass",
            severity=dg.AssetCheckSeverity.WARN
            if status == "warn"
            else dg.AssetCheckSeverity.ERROR,
            metadata=meta,
        )
        return
    if status == "pass" and not observe_passing:
        return
    note = (
        f"dbt test `{props['name']}` ran (dbt indirect selection) but its asset check was not "
        "selected: its result is logged as an observation."
    )
    for parent_id in props["depends_on"]["nodes"]:
        yield dg.AssetObservation(
            asset_key=asset_key(node(manifest, parent_id)), metadata=meta, description=note
        )


def stream_dbt(
    command: list[str], *, project_dir: Path, env: Mapping[str, str], label: str
) -> Iterator[dict[str, Any]]:
    """Run one dbt command and yield its structured log lines as they come.

    Each run writes its artifacts to a private target path (runs side by side never clash),
    starting from the project's partial-parse cache; the folder is removed when dbt succeeds
    and kept for its debug log when it fails. Every log message is echoed to stdout (the step's
    compute log). Raises `dg.Failure` when dbt exits non-zero or logs an error.
    """
    target = project_dir / "target" / "runs" / f"{label}-{uuid.uuid4().hex[:7]}"
    target.mkdir(parents=True)
    cache = project_dir / "target" / "partial_parse.msgpack"
    if cache.exists():
        shutil.copy(cache, target / cache.name)
    child_env = {
        **os.environ,
        **env,
        "DBT_LOG_FORMAT": "json",
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PYTHONUNBUFFERED": "1",
    }
    errors: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=child_env, cwd=project_dir
    ) as process:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                text = line.decode(errors="replace").strip()
                try:
                    raw = json.loads(text)
                    message = raw["info"]["msg"]
                except (ValueError, KeyError, TypeError):
                    print(text, flush=True)
                    continue
                print(message, flush=True)
                if raw["info"].get("level") == "error":
                    errors.append(message)
                yield raw
        except BaseException:  # the run was cancelled: stop dbt too
            process.terminate()
            raise
        code = process.wait()
    if code == 0 and not errors:
        shutil.rmtree(target, ignore_errors=True)
        return
    found = "\n\nErrors parsed from dbt logs:\n\n" + "\n\n".join(errors) if errors else ""
    raise dg.Failure(
        description=f"The dbt command `{' '.join(command)}` failed with exit code {code}. "
        f"The step's stdout holds dbt's log; the debug log is {target / 'dbt.log'}.{found}"
    )


def dbt_executable() -> str:
    """The dbt next to this interpreter (the project's virtualenv)."""
    return str(Path(sys.executable).parent / "dbt")

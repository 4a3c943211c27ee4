"""Ingestion jobs: support calls every OPSDASH_SUPPORT_CALLS_MINUTES (default 15), slow
dimensions hourly (see lib/schedules.py).

Sessions and requests are ingested by the `incremental_cycle` (every OPSDASH_CYCLE_MINUTES,
orchestration/defs/transform/schedules.py), together with the marts they feed; the
`ingest_sessions` job stays for manual runs. Support calls and the dimensions load in a lane
beside the cycle's (lib/schedules.py); `ingest_sessions` writes the cycle's own tables and
shares its lane.
"""

from __future__ import annotations

import dagster as dg

from orchestration.defs.quality.checks import ENGINE_TAG, warning_checks
from orchestration.lib.ingest.tables import TABLES, Cadence
from orchestration.lib.schedules import BESIDE_CYCLE, LANE_TAG, running_schedules


def _keys(cadence: Cadence) -> list[dg.AssetKey]:
    return [dg.AssetKey(["raw", t.name]) for t in TABLES if t.cadence == cadence]


ingest_sessions_job = dg.define_asset_job(
    "ingest_sessions",
    selection=dg.AssetSelection.assets(*_keys("cycle")),
    executor_def=dg.in_process_executor,
    run_tags={LANE_TAG: "cycle"},
    description="Sessions and session requests (ingestion only).",
)
# Every OPSDASH_SUPPORT_CALLS_MINUTES (1 at the fastest): like the cycle, its blocking checks
# run as SQL and its trends suite in the hourly `check_raw_trends` (Great Expectations, with
# Data Docs), so a run does not import GX: at a 1-minute cadence that import alone took 10-21 s
# of CPU a minute beside the cycle.
ingest_support_calls_job = dg.define_asset_job(
    "ingest_support_calls",
    selection=dg.AssetSelection.assets(*_keys("support_calls"))
    - warning_checks(t.name for t in TABLES if t.cadence == "support_calls"),
    executor_def=dg.in_process_executor,
    run_tags={LANE_TAG: BESIDE_CYCLE, ENGINE_TAG: "sql"},
    description="Inbound support calls from the support API "
    "(every OPSDASH_SUPPORT_CALLS_MINUTES, default 15).",
)
ingest_dimensions_job = dg.define_asset_job(
    "ingest_dimensions",
    selection=dg.AssetSelection.assets(*_keys("hourly")),
    executor_def=dg.in_process_executor,
    run_tags={LANE_TAG: BESIDE_CYCLE},
    description="Subjects, tutor subjects and availability, hourly.",
)

SCHEDULES = running_schedules(ingest_support_calls_job, ingest_dimensions_job)

"""Ingestion jobs: support calls every 15 min, slow dimensions hourly (see lib/schedules.py).

Sessions, requests, customers and tutors are ingested by the 5-minute `incremental_cycle`
(orchestration/defs/transform/schedules.py), together with the marts they feed; the
`ingest_sessions` job stays for manual runs.
"""

from __future__ import annotations

import dagster as dg

from orchestration.lib.ingest.tables import TABLES
from orchestration.lib.schedules import running_schedules


def _keys(cadence: int) -> list[dg.AssetKey]:
    return [dg.AssetKey(["raw", t.name]) for t in TABLES if t.cadence_minutes == cadence]


ingest_sessions_job = dg.define_asset_job(
    "ingest_sessions",
    selection=dg.AssetSelection.assets(*_keys(5)),
    executor_def=dg.in_process_executor,
    description="Sessions, requests, customers and tutors (ingestion only).",
)
ingest_support_calls_job = dg.define_asset_job(
    "ingest_support_calls",
    selection=dg.AssetSelection.assets(*_keys(15)),
    executor_def=dg.in_process_executor,
    description="Inbound support calls from the support API, every 15 minutes.",
)
ingest_dimensions_job = dg.define_asset_job(
    "ingest_dimensions",
    selection=dg.AssetSelection.assets(*_keys(60)),
    executor_def=dg.in_process_executor,
    description="Subjects, tutor subjects and availability, hourly.",
)

SCHEDULES = running_schedules(ingest_support_calls_job, ingest_dimensions_job)

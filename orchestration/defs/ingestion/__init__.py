"""Ingestion domain: raw/* assets, their schedules and the support API resource."""

import dagster as dg

from orchestration.defs.ingestion.assets import INGESTION_ASSETS, SupportApiResource
from orchestration.defs.ingestion.schedules import SCHEDULES, ingest_sessions_job

defs = dg.Definitions(
    assets=INGESTION_ASSETS,
    jobs=[ingest_sessions_job],
    schedules=SCHEDULES,
    resources={"support_api": SupportApiResource()},
)

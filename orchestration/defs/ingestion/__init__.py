"""Ingestion domain: raw/* assets, their schedules and the support API resource."""

import dagster as dg

from orchestration.defs.ingestion.assets import INGESTION_ASSETS
from orchestration.defs.ingestion.resources import SupportApiResource
from orchestration.defs.ingestion.schedules import SCHEDULES, ingest_sessions_job

defs = dg.Definitions(
    assets=INGESTION_ASSETS,
    jobs=[ingest_sessions_job],
    schedules=SCHEDULES,
    resources={"support_api": SupportApiResource()},
)

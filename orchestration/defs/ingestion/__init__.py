"""Ingestion domain: raw/* assets, their schedules and the support API resource."""

import dagster as dg

from orchestration.defs.ingestion.assets import INGESTION_ASSETS, SupportApiResource
from orchestration.defs.ingestion.schedules import SCHEDULES

defs = dg.Definitions(
    assets=INGESTION_ASSETS,
    schedules=SCHEDULES,
    resources={"support_api": SupportApiResource()},
)

"""Asset keys for dbt models mirror the warehouse relation: [schema, model name]."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator


class OpsdashDbtTranslator(DagsterDbtTranslator):
    """Models -> [schema, name] in the group named after their layer; sources keep their
    `meta.dagster.asset_key`, which points at the ingestion assets."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return "ingestion"
        return dbt_resource_props["schema"]

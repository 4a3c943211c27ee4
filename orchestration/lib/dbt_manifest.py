"""dbt's manifest.json as Dagster asset and check specs, without importing dagster-dbt.

dagster-dbt pulls in dbt-core, networkx and sqlglot (~2 s) wherever it is imported, i.e. in every
Dagster process, schedule tick and sensor tick. Reading the manifest ourselves declares the same
assets as `@dbt_assets` did with its default settings and our key rules:
- models -> `[schema, name]` in the group named after their layer (their schema);
- sources keep their `meta.dagster.asset_key` (the ingestion assets), else `[source, table]`;
- every dbt test attached to one model (generic, or singular with one parent) is an asset check
  on it, blocking unless its severity is `warn`;
- descriptions carry the raw SQL, code versions are the SQL's hash, and the metadata holds the
  materialization, relation, column schema and the node's unique id.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._utils.tags import is_valid_tag_key

# Node types that become assets (dbt's "refable" nodes); tests become checks.
ASSET_RESOURCE_TYPES = ("model", "seed", "snapshot")
# Metadata key that links a spec back to its manifest node (as dagster-dbt names it).
UNIQUE_ID = "dagster_dbt/unique_id"

Props = Mapping[str, Any]


def load_manifest(path: Path) -> dict[str, Any]:
    """The parsed manifest (`opsdash prepare` writes it with `dbt parse`)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `opsdash prepare` (dbt parse) first")
    return json.loads(path.read_bytes())


def node(manifest: Props, unique_id: str) -> Props:
    for section in ("nodes", "sources"):
        if unique_id in manifest[section]:
            return manifest[section][unique_id]
    raise KeyError(f"{unique_id} is not in the dbt manifest")


def asset_key(props: Props) -> dg.AssetKey:
    """Models: the warehouse relation `[schema, name]`; sources: `meta.dagster.asset_key`."""
    meta = props.get("config", {}).get("meta") or props.get("meta") or {}
    configured = meta.get("dagster", {}).get("asset_key")
    if configured:
        return dg.AssetKey(configured)
    if props["resource_type"] == "source":
        return dg.AssetKey([props["source_name"], props["name"]])
    return dg.AssetKey([props["schema"], props["name"]])


def group_name(props: Props) -> str:
    return "ingestion" if props["resource_type"] == "source" else props["schema"]


def description(props: Props) -> str:
    """The YAML description followed by the model's raw SQL, as the UI has always shown it."""
    code = textwrap.indent(props.get("raw_code") or "", "    ")
    text = props.get("description") or f"dbt {props['resource_type']} {props['name']}"
    return f"{text}\n\n#### Raw SQL:\n```sql\n{code}\n```"


def code_version(props: Props) -> str | None:
    code = props.get("raw_code")
    if code:
        return hashlib.sha1(code.encode("utf-8")).hexdigest()  # noqa: S324 (a version, not a secret)
    return props.get("checksum", {}).get("checksum")


def _table_metadata(props: Props) -> dict[str, Any]:
    columns = props.get("columns") or {}
    schema = (
        dg.TableSchema(
            columns=[
                dg.TableColumn(
                    name=name,
                    type=info.get("data_type") or "?",
                    description=info.get("description"),
                    tags={tag: "" for tag in info.get("tags", [])},
                )
                for name, info in columns.items()
            ]
        )
        if columns
        else None
    )
    parts = [props.get("database"), props.get("schema"), props.get("alias")]
    if props["resource_type"] == "source":
        parts.append(props["name"])
    materialized = props.get("config", {}).get("materialized")
    table_name = ".".join(p for p in parts if p)
    return {
        **({"dagster-dbt/materialization_type": materialized} if materialized else {}),
        **({"dagster/column_schema": schema} if schema else {}),
        **({"dagster/table_name": table_name} if table_name else {}),
    }


def metadata(manifest: Props, props: Props) -> dict[str, Any]:
    """What the UI shows under the asset's metadata."""
    adapter = manifest.get("metadata", {}).get("adapter_type")
    project_id = manifest.get("metadata", {}).get("project_id")
    return {
        **_table_metadata(props),
        UNIQUE_ID: props["unique_id"],
        **({"dagster/storage_kind": adapter} if adapter else {}),
        **({"dagster_dbt/project_id": dg.MetadataValue.text(project_id)} if project_id else {}),
    }


def _is_asset(props: Props) -> bool:
    return (
        props["resource_type"] in ASSET_RESOURCE_TYPES
        and props.get("config", {}).get("materialized") != "ephemeral"
    )


def upstream_ids(manifest: Props, props: Props) -> set[str]:
    """The assets and sources a node reads, looking through ephemeral models."""
    found: set[str] = set()
    queue = list(props.get("depends_on", {}).get("nodes", []))
    seen: set[str] = set()
    while queue:
        parent_id = queue.pop()
        if parent_id in seen:
            continue
        seen.add(parent_id)
        parent = node(manifest, parent_id)
        if parent["resource_type"] == "model" and not _is_asset(parent):
            queue.extend(parent.get("depends_on", {}).get("nodes", []))
        elif _is_asset(parent) or parent["resource_type"] == "source":
            found.add(parent_id)
    return found


def _dep(manifest: Props, upstream_id: str) -> dg.AssetDep:
    upstream = node(manifest, upstream_id)
    if upstream["resource_type"] != "source":
        return dg.AssetDep(asset_key(upstream))
    # A source's relation travels with the dependency, so a table no asset loads (app.alerts)
    # still shows where it lives.
    dep_metadata = {
        k: v for k, v in metadata(manifest, upstream).items() if not k.startswith("dagster_dbt/")
    }
    return dg.AssetDep(asset_key(upstream), metadata=dep_metadata)


def attached_node(manifest: Props, test: Props) -> str | None:
    """The one node a test judges: its attached node, its only parent, or `meta.dagster.ref`."""
    attached = test.get("attached_node")
    parents = set(test["depends_on"]["nodes"])
    if len(parents) == 1:
        [attached] = parents
    meta = test.get("config", {}).get("meta") or test.get("meta") or {}
    ref = meta.get("dagster", {}).get("ref")
    if ref:
        package = ref.get("package") or manifest["metadata"]["project_name"]
        wanted = (ref["name"], package, ref.get("version"))
        attached = next(
            (
                uid
                for uid, n in manifest["nodes"].items()
                if (n["name"], n["package_name"], n.get("version")) == wanted
            ),
            None,
        )
    return attached


def check_spec(manifest: Props, test_id: str, key: dg.AssetKey) -> dg.AssetCheckSpec:
    test = node(manifest, test_id)
    others = {asset_key(node(manifest, p)) for p in manifest["parent_map"].get(test_id, [])}
    others.discard(key)
    severity = test.get("config", {}).get("severity") or "error"
    return dg.AssetCheckSpec(
        name=test["name"],
        asset=key,
        description=test.get("meta", {}).get("description"),
        additional_deps=others,
        metadata={UNIQUE_ID: test_id},
        blocking=severity.lower() == "error",
    )


@dataclass(frozen=True)
class DbtSpecs:
    """Every dbt asset and check, and the dbt node behind each (for selection at run time)."""

    assets: list[dg.AssetSpec]
    checks: list[dg.AssetCheckSpec]
    unique_id_by_key: dict[dg.AssetKey, str]
    unique_id_by_check: dict[dg.AssetCheckKey, str]


def build_specs(manifest: Props) -> DbtSpecs:
    adapter = manifest.get("metadata", {}).get("adapter_type") or "dbt"
    assets: list[dg.AssetSpec] = []
    checks: dict[dg.AssetCheckKey, dg.AssetCheckSpec] = {}
    for unique_id, props in manifest["nodes"].items():
        if not _is_asset(props):
            continue
        key = asset_key(props)
        assets.append(
            dg.AssetSpec(
                key=key,
                deps=[_dep(manifest, u) for u in sorted(upstream_ids(manifest, props))],
                description=description(props),
                metadata=metadata(manifest, props),
                skippable=True,
                group_name=group_name(props),
                code_version=code_version(props),
                tags={t: "" for t in props.get("tags", []) if is_valid_tag_key(t)},
                kinds={"dbt", adapter},
            )
        )
        for child_id in manifest["child_map"].get(unique_id, []):
            if (
                child_id.startswith("test.")
                and attached_node(manifest, node(manifest, child_id)) == unique_id
            ):
                spec = check_spec(manifest, child_id, key)
                checks[spec.key] = spec
    return DbtSpecs(
        assets=assets,
        checks=list(checks.values()),
        unique_id_by_key={s.key: s.metadata[UNIQUE_ID] for s in assets},
        unique_id_by_check={c.key: c.metadata[UNIQUE_ID] for c in checks.values()},
    )

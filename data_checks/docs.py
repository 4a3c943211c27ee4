"""The GX context: ephemeral (no great_expectations.yml, suites live in code), with its
validation results and Data Docs kept on disk under OPSDASH_HOME so every process adds to the
same site:

    <OPSDASH_HOME>/data_docs/index.html   the Data Docs site (linked from the README and app)
    <OPSDASH_HOME>/gx/                    the stored suites and validation results behind it

Only the newest `KEEP_RESULTS` results of each suite are kept (files and pages), and the index
lists the newest `INDEX_RESULTS`, so the site and the cost of updating it stay flat however
long the pipeline runs. One site builder is kept per process: building a fresh one per check
(what `context.build_data_docs` does) recompiles every Jinja template each time.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path
from typing import Any

from data_checks.gx_api import load_gx_api

KEEP_RESULTS = 20
INDEX_RESULTS = 60
SITE = "opsdash"

_lock = threading.Lock()
_contexts: dict[Path, Any] = {}
_batches: dict[tuple[Path, str, str, str], Any] = {}
_builders: dict[Path, Any] = {}


def docs_dir(home: Path) -> Path:
    return home / "data_docs"


def index_page(home: Path) -> Path:
    return docs_dir(home) / "index.html"


def _config(home: Path) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    cfg = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    for store, sub in (
        ("validation_results_store", "validations"),
        ("expectations_store", "expectations"),
    ):
        cfg.stores[store]["store_backend"] = {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(home / "gx" / sub),
        }
    cfg.data_docs_sites = {
        SITE: {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir(home)),
            },
            "site_index_builder": {
                "class_name": "DefaultSiteIndexBuilder",
                "validation_results_limit": INDEX_RESULTS,
            },
            "site_section_builders": {"profiling": "None"},
        }
    }
    return cfg


def context(home: Path) -> Any:
    """One ephemeral context per OPSDASH_HOME per process (created on first use)."""
    gx = load_gx_api().module
    with _lock:
        if home not in _contexts:
            _contexts[home] = gx.get_context(mode="ephemeral", project_config=_config(home))
        return _contexts[home]


def batch_definition(home: Path, url: str, relation: tuple[str, str]) -> Any:
    """The whole-table batch of `relation` in the warehouse at `url` (cached)."""
    key = (home, url, *relation)
    with _lock:
        if key in _batches:
            return _batches[key]
    ctx = context(home)
    source_name = "warehouse_" + hashlib.sha256(url.encode()).hexdigest()[:10]
    with _lock:
        try:
            source = ctx.data_sources.get(source_name)
        except (KeyError, ValueError, LookupError):
            source = ctx.data_sources.add_postgres(source_name, connection_string=url)
        asset_name = ".".join(relation)
        try:
            asset = source.get_asset(asset_name)
        except LookupError:
            asset = source.add_table_asset(
                asset_name, table_name=relation[1], schema_name=relation[0]
            )
        _batches[key] = asset.add_batch_definition_whole_table("whole_table")
        return _batches[key]


def _site_builder(home: Path) -> Any:
    from great_expectations.render.renderer.site_builder import SiteBuilder

    ctx = context(home)
    with _lock:
        if home not in _builders:
            config = {
                k: v for k, v in ctx.variables.data_docs_sites[SITE].items() if k != "class_name"
            }
            builder = SiteBuilder(data_context=ctx, site_name=SITE, **config)
            builder.target_store.copy_static_assets()
            _builders[home] = builder
        return _builders[home]


def build_page(home: Path, result_key: Any, suite_name: str) -> str | None:
    """Render the validation's page, its suite's page and the index; returns the page's URL."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    builder = _site_builder(home)
    resources = [result_key, ExpectationSuiteIdentifier(name=suite_name)]
    with _lock:
        for section in builder.site_section_builders.values():
            section.build(resource_identifiers=resources)
        builder.site_index_builder.build(build_index=True)
    return builder.get_resource_url(resource_identifier=result_key)


def prune(home: Path, suite_name: str, keep: int = KEEP_RESULTS) -> int:
    """Delete all but the newest `keep` runs of `suite_name` (stored results and pages).

    Layout (GX's tuple stores): <base>/<suite>/<run name>/<run time>/<batch>.{json,html}; run
    times are ISO-like strings, so they sort chronologically.
    """
    removed = 0
    results = home / "gx" / "validations" / suite_name
    if not results.is_dir():
        return 0
    runs = sorted(
        (p for run_name in results.iterdir() if run_name.is_dir() for p in run_name.iterdir()),
        key=lambda p: p.name,
    )
    pages = docs_dir(home) / "validations" / suite_name
    for old in runs[:-keep] if keep else runs:
        run_name, run_time = old.parent.name, old.name
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(pages / run_name / run_time, ignore_errors=True)
        for parent in (old.parent, pages / run_name):
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
        removed += 1
    return removed

"""The churn assets as Dagster sees them, and the COPY encoding of the scores they write."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

from ml.scores_io import copy_text
from opsdash_core.settings import PROJECT_ROOT
from orchestration.defs.churn import defs
from orchestration.defs.resources import shared_resources


def test_asset_graph() -> None:
    full = dg.Definitions.merge(defs, dg.Definitions(resources=shared_resources()))
    graph = full.resolve_asset_graph()
    model = dg.AssetKey(["ml", "churn_model"])
    scores = dg.AssetKey(["ml", "churn_scores"])
    assert {model, scores} <= graph.get_all_asset_keys()
    reads = {
        dg.AssetKey(["intermediate", "int_sessions_deduplicated"]),
        dg.AssetKey(["staging", "stg_marketplace__customers"]),
        dg.AssetKey(["staging", "stg_support__inbound_calls"]),
    }
    assert graph.get(model).parent_keys == reads
    assert graph.get(scores).parent_keys == {model, *reads}
    for key in (model, scores):
        assert graph.get(key).group_name == "churn"
        assert "Grain:" in (full.resolve_assets_def(key).descriptions_by_key[key] or "")


def test_copy_text_escapes_only_what_copy_needs() -> None:
    assert copy_text('{"a": "b"}') == '{"a": "b"}'
    assert copy_text('{"a": "tab\\there"}') == '{"a": "tab\\\\there"}'
    assert copy_text("x\ty\nz\r") == "x\\ty\\nz\\r"


def test_churn_code_location_imports_without_heavy_libraries() -> None:
    code = (
        "import sys, orchestration.defs.churn\n"
        "heavy = [m for m in ('mlflow', 'shap', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT, timeout=60)

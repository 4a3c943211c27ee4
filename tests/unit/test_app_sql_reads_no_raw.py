"""No query of the app reads raw.* (issue 12: heavy queries go to the marts). Names come from
marts.customer_directory / marts.tutor_directory, a customer's sessions from the pipeline's
deduplicated, indexed intermediate table.

Every string literal of app_streamlit/ that is not a docstring is checked, so SQL assembled from
pieces is covered too. The one allowed raw table is raw.watermarks: the ingestion's load log (a
row per raw table), which the Models & data page shows as each raw table's freshness without
scanning any raw table.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app_streamlit"
RAW = re.compile(r"\braw\.([A-Za-z_][A-Za-z0-9_]*)")
ALLOWED = {"watermarks"}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def raw_reads(source: str) -> list[str]:
    """raw.<table> names in the non-docstring string literals of a module."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            found += RAW.findall(node.value)
    return found


def test_the_check_sees_sql_and_ignores_docstrings() -> None:
    source = '"""Reads raw.customers? No."""\nSQL = "select * from raw.customers c"\n'
    assert raw_reads(source) == ["customers"]
    assert raw_reads("X = \"select 'raw.' || name from t\"") == []


def test_no_app_query_reads_raw_tables() -> None:
    files = sorted(APP.rglob("*.py"))
    assert len(files) > 10
    offenders = {
        str(path.relative_to(APP)): tables
        for path in files
        if (tables := [t for t in raw_reads(path.read_text()) if t not in ALLOWED])
    }
    assert offenders == {}

"""One export path: the app's own audited, formula-neutralized CSV button.

st.dataframe's toolbar has a built-in "Download as CSV" that neither writes app.audit_log nor
quotes cells starting with = + - @. It is switched off (`client.disableDataExport`) both where
AppTest and a plain `streamlit run` read it (.streamlit/config.toml) and on the command line
`opsdash up` uses; the browser test checks the button is gone from a rendered table.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from app_streamlit import exports
from opsdash_core.settings import PROJECT_ROOT, Settings
from opsdash_stack.services import streamlit as streamlit_service

APP = PROJECT_ROOT / "app_streamlit"


def test_config_toml_hides_the_table_download() -> None:
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["disableDataExport"] is True


def test_opsdash_up_passes_the_flag() -> None:
    argv = streamlit_service.service(Settings()).argv
    at = argv.index("--client.disableDataExport")
    assert argv[at + 1] == "true"


def _calls(path: Path) -> set[str]:
    """Names of `st.<x>(...)` calls in one module."""
    tree = ast.parse(path.read_text())
    return {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "st"
    }


def test_only_exports_py_offers_downloads() -> None:
    """No page draws its own download button or an editable table (whose export and
    copy-paste would bypass the audit): every CSV goes through exports.download_button."""
    for path in APP.rglob("*.py"):
        calls = _calls(path)
        assert "data_editor" not in calls, path
        if path != APP / "exports.py":
            assert "download_button" not in calls, path


def test_the_app_export_neutralizes_formulas() -> None:
    body = exports.to_csv(["name", "n"], [["=HYPERLINK(1)", -3], ["@x", 2], ["+1", 0]])
    text = body.decode().lstrip("\ufeff").splitlines()
    assert text[1:] == ["'=HYPERLINK(1),-3", "'@x,2", "'+1,0"]

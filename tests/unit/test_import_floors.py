"""The floors hold: every import points down, and no package has an import circle.

The contracts live in pyproject.toml (`[tool.importlinter]`); this runs them with `lint-imports`
on the real tree, then on a copy of the tree with one wrong import added, to show that each kind
of wrong import turns the check red.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from opsdash_core.settings import PROJECT_ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
# Top-level folders that are not floors: they may import anything and nothing imports them.
NOT_FLOORS = {"tests", "bench"}


def _declared() -> dict:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _packages_on_disk(root: Path) -> set[str]:
    return {
        p.parent.name
        for p in root.glob("*/__init__.py")
        if p.parent.name not in NOT_FLOORS and not p.parent.name.startswith(".")
    }


def _ini_value(value: object) -> str:
    if isinstance(value, list):
        return "".join(f"\n    {item}" for item in value)
    return str(value)


def _write_config(root: Path, path: Path) -> Path:
    """The pyproject contracts as an INI file, with every package found under `root` analysed.

    A package that exists but is not yet listed in `root_packages` (e.g. a new library whose
    floor the layers already name as optional) is checked too instead of slipping through.
    """
    declared = _declared()
    roots = sorted(set(declared["root_packages"]) | _packages_on_disk(root))
    lines = ["[importlinter]", f"root_packages ={_ini_value(roots)}"]
    for contract in declared["contracts"]:
        lines.append(f"\n[importlinter:contract:{contract['id']}]")
        lines += [f"{k} = {_ini_value(v)}" for k, v in contract.items() if k != "id"]
        if "ancestors" in contract:  # the circle check covers every analysed package
            lines[-1] = f"ancestors ={_ini_value(roots)}"
    path.write_text("\n".join(lines) + "\n")
    return path


def _lint(root: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(config)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_every_package_has_a_floor() -> None:
    """A new top-level package must say where it stands before the layers can check it."""
    declared = _declared()
    floors = declared["contracts"][0]
    assert floors["id"] == "floors"
    named = {tail.strip(" ()") for layer in floors["layers"] for tail in layer.split("|")}
    assert _packages_on_disk(PROJECT_ROOT) <= named


def test_the_project_keeps_every_import_contract(tmp_path: Path) -> None:
    result = _lint(PROJECT_ROOT, _write_config(PROJECT_ROOT, tmp_path / "contracts.ini"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout


# file -> the wrong import added to it; each must show up in the report of a broken contract.
BAD_IMPORTS = {
    "opsdash_core/bad_tooling.py": "import opsdash_stack.cli\n",  # the base imports the tooling
    "opsdash_core/bad_app.py": "import app_streamlit.session\n",  # the base imports the app
    "ml/bad_orchestration.py": "import orchestration.definitions\n",  # a library, orchestration
    "simulator/bad_sibling.py": "import data_checks\n",  # two libraries on one floor
    "orchestration/bad_tooling.py": "import opsdash_stack\n",  # orchestration, the tooling
    "app_streamlit/views/bad_gate.py": "import app_streamlit.app\n",  # a view imports the gate
    "simulator/live_calls.py": "from simulator import scenarios\n",  # the old circle, back
}


def test_every_wrong_import_breaks_a_contract(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for package in _packages_on_disk(PROJECT_ROOT):
        shutil.copytree(
            PROJECT_ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for relative, line in BAD_IMPORTS.items():
        bad = tree / relative
        bad.write_text((bad.read_text() if bad.exists() else "") + line)
    result = _lint(tree, _write_config(tree, tmp_path / "contracts.ini"))
    report = result.stdout + result.stderr
    assert result.returncode != 0, report
    for relative in BAD_IMPORTS:
        importer = relative.removesuffix(".py").replace("/", ".")
        assert f"{importer} ->" in report, f"{importer} went unnoticed:\n{report}"

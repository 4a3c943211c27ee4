"""Where the dbt project and its parsed manifest live (`opsdash prepare` writes the manifest)."""

from pathlib import Path

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"
MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"

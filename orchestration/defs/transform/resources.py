"""The dbt CLI as a resource: where the project is and which dbt runs it."""

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from orchestration.defs.transform.project import DBT_PROJECT_DIR
from orchestration.lib.dbt_cli import dbt_executable, stream_dbt


class DbtResource(dg.ConfigurableResource):
    """Runs dbt commands in the project with its `profiles.yml` (which reads only
    `OPSDASH_DBT_*` variables: the caller passes them in `env`)."""

    project_dir: str = str(DBT_PROJECT_DIR)
    profiles_dir: str = str(DBT_PROJECT_DIR)
    executable: str = ""

    def stream(
        self, args: list[str], env: Mapping[str, str], label: str
    ) -> Iterator[dict[str, Any]]:
        """Run `dbt <args>` and yield its structured log lines (see lib/dbt_cli.py)."""
        return stream_dbt(
            [self.executable or dbt_executable(), *args],
            project_dir=Path(self.project_dir),
            env={**env, "DBT_PROFILES_DIR": self.profiles_dir, "DBT_PROJECT_DIR": self.project_dir},
            label=label,
        )

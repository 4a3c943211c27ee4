"""The Dagster webserver (UI) and daemon (schedules, sensors), both on `workspace.yaml`.

They run from DAGSTER_HOME, not the project root: Dagster's CLIs load a `.env` from their working
directory, which would override `OPSDASH_ENV_FILE`. Both, and the runs they launch, connect to
the warehouse as `opsdash_pipeline` (`opsdash_core.db.service_env`).
"""

from __future__ import annotations

from pathlib import Path

from opsdash_core.db import service_env
from opsdash_core.settings import PROJECT_ROOT, Settings
from opsdash_stack.dagster_ui import loopback_hosts
from opsdash_stack.supervisor import Service, venv_bin

WORKSPACE = PROJECT_ROOT / "workspace.yaml"


def dagster_home(s: Settings) -> Path:
    return s.opsdash_home / "dagster"


def webserver(s: Settings) -> Service:
    """The UI through `opsdash_stack.dagster_ui`: dagster-webserver refusing foreign Host and
    Origin headers (it has no login of its own; see that module)."""
    home = dagster_home(s)
    allowed = loopback_hosts(s.dagster_port, s.dagster_allowed_hosts.split(","))
    return Service(
        "dagster-webserver",
        [
            venv_bin("python"),
            "-m",
            "opsdash_stack.dagster_ui",
            "--allowed-hosts",
            ",".join(sorted(allowed)),
            "--",
            "-h",
            "127.0.0.1",
            "-p",
            str(s.dagster_port),
            "-w",
            str(WORKSPACE),
        ],
        s.dagster_port,
        f"http://127.0.0.1:{s.dagster_port}/server_info",
        120,
        {"DAGSTER_HOME": str(home), **service_env(s, "pipeline")},
        home,
    )


def daemon(s: Settings) -> Service:
    home = dagster_home(s)
    return Service(
        "dagster-daemon",
        [venv_bin("dagster-daemon"), "run", "-w", str(WORKSPACE)],
        None,
        None,
        60,
        {"DAGSTER_HOME": str(home), **service_env(s, "pipeline")},
        home,
    )

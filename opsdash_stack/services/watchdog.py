"""The alerting watchdog (`opsdash watchdog`): a small loop beside Dagster, not inside it, so it
still speaks when the Dagster daemon or its sensors stop (opsdash_core/watchdog.py)."""

from __future__ import annotations

from opsdash_core.db import service_env
from opsdash_core.settings import Settings
from opsdash_stack.supervisor import Service, venv_bin


def service(s: Settings) -> Service:
    # Writes alert rule state and outbox rows like the pipeline's alerting: its role.
    return Service(
        "alert-watchdog",
        [venv_bin("opsdash"), "watchdog"],
        None,
        None,
        env=service_env(s, "pipeline"),
    )

"""Helpers shared by the benchmarks: scratch databases, the simulator, timing."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from opsdash_core.migrate import upgrade as migrate
from opsdash_core.settings import PROJECT_ROOT, get_settings
from simulator import sourcedb

BIN = Path(sys.executable).parent
__all__ = ["BIN", "migrate", "opsdash", "scratch_database", "timed"]


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A database dropped afterwards, on the cluster of WAREHOUSE_URL."""
    with sourcedb.scratch_database(get_settings().warehouse_url, f"bench_{prefix}") as url:
        yield url


def opsdash(args: list[str], env: dict[str, str]) -> float:
    """Run an `opsdash` sub-command with extra env; returns wall seconds, fails loudly."""
    started = time.monotonic()
    subprocess.run(
        [str(BIN / "opsdash"), *args], env={**os.environ, **env}, check=True, cwd=PROJECT_ROOT
    )
    return time.monotonic() - started


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, list[float]]:
    runs = []
    for _ in range(repeat):
        started = time.monotonic()
        fn()
        runs.append(time.monotonic() - started)
    return statistics.median(runs), runs

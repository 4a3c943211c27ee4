"""Helpers shared by the benchmarks: scratch databases, the simulator, timing."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from opsdash_core.services import http_ok, wait_for
from opsdash_core.settings import PROJECT_ROOT, get_settings

BIN = Path(sys.executable).parent


def with_db(url: str, dbname: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + dbname


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A database dropped afterwards, on the cluster of WAREHOUSE_URL."""
    admin = with_db(get_settings().warehouse_url, "postgres")
    name = f"bench_{prefix}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield with_db(get_settings().warehouse_url, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "opsdash_core" / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "head")


def opsdash(args: list[str], env: dict[str, str]) -> float:
    """Run an `opsdash` sub-command with extra env; returns wall seconds, fails loudly."""
    started = time.monotonic()
    subprocess.run(
        [str(BIN / "opsdash"), *args], env={**os.environ, **env}, check=True, cwd=PROJECT_ROOT
    )
    return time.monotonic() - started


@contextmanager
def support_api(source_url: str, port: int) -> Iterator[str]:
    """The simulated support API serving `source_url`, for the duration of a benchmark."""
    env = {**os.environ, "SOURCE_URL": source_url, "SUPPORT_API_RATE_LIMIT": "1000"}
    proc = subprocess.Popen(
        [
            str(BIN / "uvicorn"),
            "simulator.support_api:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=PROJECT_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_ok(f"{url}/health"), "support API", 30)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, list[float]]:
    runs = []
    for _ in range(repeat):
        started = time.monotonic()
        fn()
        runs.append(time.monotonic() - started)
    return statistics.median(runs), runs

"""The product stack of the end-to-end tier, brought up once per test session.

`opsdash up` at 1,500 customers takes minutes: every e2e module that needs the whole product
(test_make_up.py, test_browser.py) shares this one stack instead of starting its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from secrets import token_urlsafe

import psycopg
import pytest

from opsdash_core.settings import PROJECT_ROOT, get_settings

OPSDASH = str(Path(sys.executable).parent / "opsdash")


def opsdash(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPSDASH, *args],
        cwd=PROJECT_ROOT,
        env=clean_env(),
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def clean_env() -> dict[str, str]:
    """The environment a user's shell would have: nothing left behind by in-process tests."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def fresh_databases() -> None:
    """Start from empty databases, as a fresh machine would: earlier tiers share this cluster."""
    s = get_settings()
    admin = s.warehouse_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in ("ops", "marketplace", "dagster", "mlflow"):
            conn.execute(f'drop database if exists "{name}" with (force)')
    (s.opsdash_home / "admin-password").unlink(missing_ok=True)


def add_mlflow_user(env_file: Path) -> None:
    """The MLflow user an operator puts in `.env` (README "Security"), so that its password too
    is among the secrets every service is handed and none may show on a command line. MLflow
    runs without its auth app here: the clients send the user, the server ignores it."""
    if "MLFLOW_TRACKING_PASSWORD=" in env_file.read_text():
        return
    fd = os.open(env_file, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
    with os.fdopen(fd, "a") as fh:
        fh.write(f"MLFLOW_TRACKING_USERNAME=admin\nMLFLOW_TRACKING_PASSWORD={token_urlsafe(18)}\n")


@pytest.fixture(scope="session")
def product() -> Iterator[dict]:
    """`opsdash up --scale 1500 --days 90` from empty databases; `down` (then the infra the
    other tiers need back) at the end of the session."""
    s = get_settings()
    fresh_databases()
    add_mlflow_user(Path(os.environ["OPSDASH_ENV_FILE"]))
    started = time.monotonic()
    result = opsdash("up", "--scale", "1500", "--days", "90")
    print(result.stdout[-4000:], result.stderr[-4000:])
    assert result.returncode == 0, result.stderr[-3000:]
    yield {"settings": s, "stdout": result.stdout, "seconds": time.monotonic() - started}
    opsdash("down")
    # Later tests still need PostgreSQL and Redis.
    opsdash("up", "--infra-only")

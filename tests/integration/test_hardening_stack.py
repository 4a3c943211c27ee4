"""The test stack's own services, started the way `opsdash up` starts them: no process on the
host shows a secret from `.env` on its command line, and Redis refuses clients without the
password."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from opsdash_core.redis_client import redis_client
from opsdash_core.settings import Settings, get_settings
from opsdash_stack.services.catalog import python_services
from opsdash_stack.supervisor import start_service, stop_service

pytestmark = pytest.mark.integration

# What `opsdash up` starts besides PostgreSQL and Redis, minus the heavy Dagster and Streamlit
# processes (their argv is checked in tests/unit/test_hardening_secrets.py).
STARTED = ("sinks", "support-api", "mlflow")
SECRET_KEYS = (
    "OPSDASH_PG_PASSWORD",
    "OPSDASH_REDIS_PASSWORD",
    "SUPPORT_API_TOKEN",
    "OPSDASH_COOKIE_SECRET",
)


def _env_file() -> Path:
    return Path(os.environ["OPSDASH_ENV_FILE"])


def _env_values() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in _env_file().read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


def _command_lines() -> dict[int, str]:
    """Every process's argv as `ps` would show it to any local user."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        found[int(entry.name)] = raw.replace(b"\0", b" ").decode(errors="replace")
    return found


@pytest.fixture(scope="module")
def stack() -> Iterator[Settings]:
    s = get_settings()
    by_name = {svc.name: svc for svc in python_services(s)}
    started: list[str] = []
    try:
        for name in STARTED:
            start_service(s, by_name[name])
            started.append(name)
        yield s
    finally:
        for name in reversed(started):
            stop_service(s, name)


def test_no_command_line_on_the_host_holds_a_secret(stack: Settings) -> None:
    values = _env_values()
    secrets = {k: values[k] for k in SECRET_KEYS}
    assert all(len(v) >= 16 for v in secrets.values())
    lines = _command_lines()
    # The processes that used to carry secrets are really there to be looked at.
    assert any("mlflow" in cmd and "server" in cmd for cmd in lines.values())
    assert any("redis-server" in cmd and str(stack.redis_port) in cmd for cmd in lines.values())
    assert any("postgres" in cmd for cmd in lines.values())
    leaks = [
        (pid, key) for pid, cmd in lines.items() for key, value in secrets.items() if value in cmd
    ]
    assert leaks == []


def test_secret_files_are_private(stack: Settings) -> None:
    assert stat.S_IMODE(_env_file().stat().st_mode) == 0o600
    conf = stack.opsdash_home / "redis" / "redis.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert f"requirepass {stack.redis_password}" in conf.read_text()


def test_redis_refuses_a_client_without_the_password(stack: Settings) -> None:
    anonymous = redis_lib.Redis(host="127.0.0.1", port=stack.redis_port, socket_timeout=2)
    with pytest.raises(redis_lib.AuthenticationError):
        anonymous.get("opsdash:probe")
    wrong = redis_lib.Redis(
        host="127.0.0.1", port=stack.redis_port, password="not-the-password", socket_timeout=2
    )
    with pytest.raises(redis_lib.AuthenticationError):
        wrong.ping()
    client = redis_client()  # what the app, the cache and the login limiter use
    assert client is not None
    assert client.ping()

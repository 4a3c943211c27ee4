"""The local Redis: the app's shared cache and login limiter, daemonized with its own PID file.

Redis requires a password (`requirepass`). It reaches `redis-server` through a config file
created mode 0600 before anything is written to it, never through argv, where `ps` would show
it to every local user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from opsdash_core.settings import Settings
from opsdash_stack.console import log
from opsdash_stack.probes import ServiceError, port_open, wait_for
from opsdash_stack.supervisor import pidfile, stop_service

NAME = "redis"


def config_text(s: Settings, data: Path) -> str:
    """The whole server configuration (the password included)."""
    if not s.redis_password:
        raise ServiceError(
            "OPSDASH_REDIS_PASSWORD is empty: Redis would accept anyone on this host; "
            "set it in .env (`opsdash up` generates one)"
        )
    if any(c in s.redis_password for c in "\"'\\ \n\r\t"):
        raise ServiceError("OPSDASH_REDIS_PASSWORD must not contain quotes, spaces or backslashes")
    return "\n".join(
        [
            "# Written by opsdash at every start (mode 0600: it holds the password).",
            "bind 127.0.0.1",
            f"port {s.redis_port}",
            "protected-mode yes",
            "daemonize yes",
            f'dir "{data}"',
            f'pidfile "{pidfile(s, NAME)}"',
            f'logfile "{s.log_dir / "redis.log"}"',
            "save 300 100",
            f"requirepass {s.redis_password}",
            "",
        ]
    )


def write_config(s: Settings, data: Path) -> Path:
    """Create (or replace) the config file with mode 0600 from its first byte."""
    path = data / "redis.conf"
    text = config_text(s, data)
    path.unlink(missing_ok=True)  # O_CREAT's mode only applies to a new file
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def start(s: Settings) -> None:
    """Start Redis on 127.0.0.1 (a no-op when the port already answers)."""
    if port_open(s.redis_port):
        log(f"Redis already running on 127.0.0.1:{s.redis_port}")
        return
    data = s.opsdash_home / "redis"
    data.mkdir(parents=True, exist_ok=True)
    s.run_dir.mkdir(parents=True, exist_ok=True)
    s.log_dir.mkdir(parents=True, exist_ok=True)
    conf = write_config(s, data)
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    log(f"starting Redis on 127.0.0.1:{s.redis_port}")
    subprocess.run([server, str(conf)], check=True)
    wait_for(lambda: port_open(s.redis_port), "Redis", 20, s.log_dir / "redis.log")


def stop(s: Settings) -> None:
    stop_service(s, NAME)

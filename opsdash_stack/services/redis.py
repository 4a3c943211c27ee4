"""The local Redis: the app's shared cache and login limiter, daemonized with its own PID file."""

from __future__ import annotations

import shutil
import subprocess

from opsdash_core.settings import Settings
from opsdash_stack.console import log
from opsdash_stack.probes import port_open, wait_for
from opsdash_stack.supervisor import pidfile, stop_service

NAME = "redis"


def start(s: Settings) -> None:
    """Start Redis on 127.0.0.1 (a no-op when the port already answers)."""
    if port_open(s.redis_port):
        log(f"Redis already running on 127.0.0.1:{s.redis_port}")
        return
    data = s.opsdash_home / "redis"
    data.mkdir(parents=True, exist_ok=True)
    s.run_dir.mkdir(parents=True, exist_ok=True)
    s.log_dir.mkdir(parents=True, exist_ok=True)
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    log(f"starting Redis on 127.0.0.1:{s.redis_port}")
    subprocess.run(
        [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(s.redis_port),
            "--daemonize",
            "yes",
            "--dir",
            str(data),
            "--pidfile",
            str(pidfile(s, NAME)),
            "--logfile",
            str(s.log_dir / "redis.log"),
            "--save",
            "300 100",
            "--protected-mode",
            "yes",
        ],
        check=True,
    )
    wait_for(lambda: port_open(s.redis_port), "Redis", 20, s.log_dir / "redis.log")


def stop(s: Settings) -> None:
    stop_service(s, NAME)

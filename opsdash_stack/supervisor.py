"""Start and stop background processes by PID file.

Every process runs in its own session with its log under `OPSDASH_HOME/logs`; stopping goes by
PID file only, so nothing that opsdash did not start is ever touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from opsdash_core.settings import PROJECT_ROOT, Settings
from opsdash_stack.console import log
from opsdash_stack.probes import ServiceError, http_ok, port_open, wait_for


@dataclass(frozen=True)
class Service:
    """A long-running process that opsdash starts in the background."""

    name: str
    argv: list[str]
    port: int | None
    health_url: str | None
    timeout: float = 90.0
    env: dict[str, str] | None = None
    # Dagster's CLIs load `.env` from their working directory, overriding our environment;
    # they run from DAGSTER_HOME so that `OPSDASH_ENV_FILE` alone decides the settings.
    cwd: Path | None = None


def venv_bin(name: str) -> str:
    """A console script of this virtualenv (next to the running interpreter)."""
    return str(Path(sys.executable).parent / name)


def pidfile(s: Settings, name: str) -> Path:
    return s.run_dir / f"{name}.pid"


def pid_alive(pid: int) -> bool:
    # A service this process started and that has exited stays a zombie (and answers kill 0)
    # until it is reaped: reap it here, or stopping it waits out the full SIGKILL timeout.
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(path: Path) -> int | None:
    """The PID in `path` if that process still runs, else None."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def start_service(s: Settings, svc: Service) -> None:
    """Start `svc` unless its PID file names a live process, then wait for its health URL."""
    s.run_dir.mkdir(parents=True, exist_ok=True)
    s.log_dir.mkdir(parents=True, exist_ok=True)
    path = pidfile(s, svc.name)
    logf = s.log_dir / f"{svc.name}.log"
    pid = read_pid(path)
    if pid:
        log(f"{svc.name} already running (pid {pid})")
    else:
        if svc.port and port_open(svc.port):
            raise ServiceError(
                f"port {svc.port} for {svc.name} is taken by a process opsdash did not start; "
                "stop it or choose another port in .env"
            )
        env = {**os.environ, **(svc.env or {})}
        with logf.open("ab") as out:
            proc = subprocess.Popen(
                svc.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=svc.cwd or PROJECT_ROOT,
                start_new_session=True,
            )
        pid = proc.pid
        path.write_text(str(pid))
        log(f"started {svc.name} (pid {pid}, log {logf})")
    if svc.health_url:
        url = svc.health_url
        started = pid
        wait_for(lambda: http_ok(url), svc.name, svc.timeout, logf, lambda: pid_alive(started))


def group_members(pgid: int) -> set[int]:
    """Live processes of process group `pgid` (zombies excluded: they hold nothing)."""
    members = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.add(int(entry.name))
    return members


def stop_service(s: Settings, name: str, timeout: float = 20.0) -> None:
    """SIGTERM the process group in `name`'s PID file, SIGKILL what is left after `timeout`.

    The whole group, not only its leader: Dagster's code servers and run workers are the
    services' children, and a code server that outlived its webserver kept running (and its
    port and database connections) until killed by hand.
    """
    path = pidfile(s, name)
    pid = read_pid(path)
    if pid is None:
        path.unlink(missing_ok=True)
        return
    log(f"stopping {name} (pid {pid})")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (pid_alive(pid) or group_members(pid)):
        time.sleep(0.2)
    if pid_alive(pid) or group_members(pid):
        left = sorted(group_members(pid))
        log(f"{name}: SIGKILL for what ignored SIGTERM for {timeout:.0f} s (pids {left})")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        while (pid_alive(pid) or group_members(pid)) and time.monotonic() < deadline + 5:
            time.sleep(0.1)
    path.unlink(missing_ok=True)

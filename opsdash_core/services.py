"""Start, stop and inspect the local services opsdash runs on one machine.

Every service is a real server from Debian or PyPI, bound to 127.0.0.1, with its data, PID file
and log under `OPSDASH_HOME` (default `.local/`). Stopping goes by PID file only, so nothing that
opsdash did not start is ever touched.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opsdash_core.settings import PROJECT_ROOT, Settings

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_OS_USER = "postgres"
DATABASES = ("ops", "marketplace", "dagster", "mlflow")


class ServiceError(RuntimeError):
    """A service could not be started or did not answer in time."""


def log(msg: str) -> None:
    print(f"[opsdash] {msg}", flush=True)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URLs
            return 200 <= resp.status < 500
    except OSError:
        return False


def wait_for(
    check: Callable[[], bool], what: str, timeout: float, log_file: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    tail = ""
    if log_file and log_file.exists():
        tail = "\n--- last lines of " + str(log_file) + " ---\n"
        tail += "\n".join(log_file.read_text(errors="replace").splitlines()[-25:])
    raise ServiceError(f"{what} did not answer within {timeout:.0f}s{tail}")


# ---------------------------------------------------------------- PostgreSQL


def _pg_run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL binary as the unprivileged OS user (the server refuses root)."""
    cmd = [str(PG_BIN / args[0]), *args[1:]]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", PG_OS_USER, "--", *cmd]
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)  # type: ignore[call-overload]


def _chown_tree(path: Path, user: str) -> None:
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam(user)
    for p in [path, *path.rglob("*")]:
        os.chown(p, pw.pw_uid, pw.pw_gid)


def _ensure_traversable(path: Path) -> None:
    """The postgres OS user must be able to reach a data directory that lives under our tree."""
    for parent in [path, *path.parents]:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def postgres_start(s: Settings) -> None:
    data = s.opsdash_home / "pg" / "data"
    logf = s.log_dir / "postgres.log"
    s.log_dir.mkdir(parents=True, exist_ok=True)
    if port_open(s.pg_port) and (data / "postmaster.pid").exists():
        log(f"PostgreSQL already running on 127.0.0.1:{s.pg_port}")
        return
    if not (data / "PG_VERSION").exists():
        log(f"initialising PostgreSQL cluster in {data}")
        data.mkdir(parents=True, exist_ok=True)
        pwfile = s.opsdash_home / "pg" / "pwfile"
        pwfile.write_text(s.pg_password + "\n")
        pwfile.chmod(0o600)
        _chown_tree(s.opsdash_home / "pg", PG_OS_USER)
        _ensure_traversable(data.parent)
        _pg_run(
            [
                "initdb",
                "-D",
                str(data),
                "-U",
                s.pg_user,
                "--pwfile",
                str(pwfile),
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        )
        pwfile.unlink()
        conf = data / "postgresql.conf"
        conf.write_text(conf.read_text() + _pg_conf(s))
    if not logf.exists():
        logf.touch()
    _chown_tree(logf, PG_OS_USER)
    _ensure_traversable(s.log_dir)
    log(f"starting PostgreSQL on 127.0.0.1:{s.pg_port}")
    _pg_run(["pg_ctl", "-D", str(data), "-l", str(logf), "-w", "-t", "60", "start"])
    wait_for(lambda: port_open(s.pg_port), "PostgreSQL", 60, logf)


def _pg_conf(s: Settings) -> str:
    socket_dir = s.opsdash_home / "pg"
    return (
        "\n# opsdash: loopback only, tuned for a small shared machine\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {s.pg_port}\n"
        f"unix_socket_directories = '{socket_dir}'\n"
        "max_connections = 200\n"
        "shared_buffers = 1GB\n"
        "work_mem = 64MB\n"
        "maintenance_work_mem = 512MB\n"
        "max_wal_size = 4GB\n"
        "synchronous_commit = off\n"
        "jit = off\n"
        + ("shared_preload_libraries = 'timescaledb'\n" if _timescale_installed() else "")
    )


def _timescale_installed() -> bool:
    return any(Path("/usr/lib/postgresql/15/lib").glob("timescaledb*.so"))


def postgres_stop(s: Settings) -> None:
    data = s.opsdash_home / "pg" / "data"
    if not (data / "postmaster.pid").exists():
        return
    log("stopping PostgreSQL")
    try:
        _pg_run(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"])
    except subprocess.CalledProcessError as exc:
        log(f"pg_ctl stop: {exc.stderr.strip()}")


def postgres_create_databases(s: Settings) -> None:
    import psycopg

    admin = s.warehouse_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        existing = {r[0] for r in conn.execute("select datname from pg_database")}
        for db in DATABASES:
            if db not in existing:
                log(f"creating database {db}")
                conn.execute(f'create database "{db}"')  # identifiers from a constant list


# ---------------------------------------------------------------- Redis


def redis_start(s: Settings) -> None:
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
            str(s.run_dir / "redis.pid"),
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


# ---------------------------------------------------------------- Python services


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
    return str(Path(sys.executable).parent / name)


def python_services(s: Settings) -> list[Service]:
    home = s.opsdash_home
    dagster_home = str(home / "dagster")
    dagster_env = {"DAGSTER_HOME": dagster_home}
    mlflow_env = {
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    services = [
        Service(
            "mlflow",
            [
                venv_bin("mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(s.mlflow_port),
                "--workers",
                "1",
                "--backend-store-uri",
                s.mlflow_backend_url.replace("postgresql://", "postgresql+psycopg2://", 1),
                "--artifacts-destination",
                str(home / "mlflow-artifacts"),
                "--allowed-hosts",
                f"127.0.0.1:{s.mlflow_port},localhost:{s.mlflow_port}",
            ],
            s.mlflow_port,
            f"http://127.0.0.1:{s.mlflow_port}/health",
            120,
            mlflow_env,
        ),
        Service(
            "dagster-webserver",
            [
                venv_bin("dagster-webserver"),
                "-h",
                "127.0.0.1",
                "-p",
                str(s.dagster_port),
                "-w",
                str(PROJECT_ROOT / "workspace.yaml"),
            ],
            s.dagster_port,
            f"http://127.0.0.1:{s.dagster_port}/server_info",
            120,
            dagster_env,
            Path(dagster_home),
        ),
        Service(
            "dagster-daemon",
            [venv_bin("dagster-daemon"), "run", "-w", str(PROJECT_ROOT / "workspace.yaml")],
            None,
            None,
            60,
            dagster_env,
            Path(dagster_home),
        ),
        Service(
            "streamlit",
            [
                venv_bin("streamlit"),
                "run",
                str(PROJECT_ROOT / "app_streamlit" / "app.py"),
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(s.streamlit_port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            s.streamlit_port,
            f"http://127.0.0.1:{s.streamlit_port}/_stcore/health",
            60,
        ),
    ]
    if s.slack_webhook_url.startswith("http://127.0.0.1") and s.smtp_host == "127.0.0.1":
        services.insert(0, sinks_service(s))
    if s.simulator_enabled:
        services.insert(0, support_api_service(s))
        services.append(Service("simulator-live", [venv_bin("opsdash"), "sim", "live"], None, None))
    return services


def sinks_service(s: Settings) -> Service:
    """Local stand-ins for the mail relay and Slack, used while no real ones are configured."""
    port = s.sink_http_port
    return Service(
        "sinks",
        [
            venv_bin("opsdash"),
            "sinks",
            "--smtp-port",
            str(s.smtp_port),
            "--http-port",
            str(port),
            "--dir",
            str(s.opsdash_home / "outbox"),
        ],
        None,
        f"http://127.0.0.1:{port}/health",
        30,
    )


def support_api_service(s: Settings) -> Service:
    return Service(
        "support-api",
        [
            venv_bin("uvicorn"),
            "simulator.support_api:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(s.support_api_port),
            "--log-level",
            "warning",
        ],
        s.support_api_port,
        f"http://127.0.0.1:{s.support_api_port}/health",
        30,
    )


def _pidfile(s: Settings, name: str) -> Path:
    return s.run_dir / f"{name}.pid"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def start_service(s: Settings, svc: Service) -> None:
    s.run_dir.mkdir(parents=True, exist_ok=True)
    s.log_dir.mkdir(parents=True, exist_ok=True)
    pidfile = _pidfile(s, svc.name)
    logf = s.log_dir / f"{svc.name}.log"
    if read_pid(pidfile):
        log(f"{svc.name} already running (pid {read_pid(pidfile)})")
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
        pidfile.write_text(str(proc.pid))
        log(f"started {svc.name} (pid {proc.pid}, log {logf})")
    if svc.health_url:
        url = svc.health_url
        wait_for(lambda: http_ok(url), svc.name, svc.timeout, logf)


def stop_service(s: Settings, name: str, timeout: float = 20.0) -> None:
    pidfile = _pidfile(s, name)
    pid = read_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return
    log(f"stopping {name} (pid {pid})")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.2)
    if pid_alive(pid):
        os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def redis_stop(s: Settings) -> None:
    stop_service(s, "redis")


def status(s: Settings) -> list[tuple[str, str, str]]:
    """(service, state, where) for every service opsdash manages."""
    rows = [
        ("postgresql", "running" if port_open(s.pg_port) else "stopped", f"127.0.0.1:{s.pg_port}"),
        ("redis", "running" if port_open(s.redis_port) else "stopped", f"127.0.0.1:{s.redis_port}"),
    ]
    for svc in python_services(s):
        pid = read_pid(_pidfile(s, svc.name))
        where = f"http://127.0.0.1:{svc.port}" if svc.port else "-"
        rows.append((svc.name, f"running (pid {pid})" if pid else "stopped", where))
    return rows

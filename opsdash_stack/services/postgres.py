"""The local PostgreSQL 15 cluster: initdb once, start, stop, create the four databases.

The server runs as the unprivileged `postgres` OS user (it refuses root), bound to 127.0.0.1,
with its data under `OPSDASH_HOME/pg`.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from opsdash_core.settings import Settings
from opsdash_stack.console import log
from opsdash_stack.probes import port_open, wait_for

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_LIB = Path("/usr/lib/postgresql/15/lib")
PG_OS_USER = "postgres"
DATABASES = ("ops", "marketplace", "dagster", "mlflow")


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


def start(s: Settings) -> None:
    """Initialise the cluster on first use, then start it (a no-op when it already runs)."""
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
        pwfile.unlink(missing_ok=True)  # left by an interrupted run; O_EXCL needs it gone
        # 0600 from creation: there is never a moment when another user could read it.
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(s.pg_password + "\n")
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
        + (
            "shared_preload_libraries = 'timescaledb'\n"
            # One scheduler per database holding the extension (ops) plus up to 7 of its 9
            # policy jobs at once (6 compression, 1 retention, 2 continuous-aggregate refreshes).
            "timescaledb.max_background_workers = 8\n"
            # TimescaleDB's sizing: 3 + its background workers + max_parallel_workers (8, the
            # PostgreSQL default); below that, policies or parallel queries wait for a slot.
            "max_worker_processes = 19\n"
            if _timescale_installed()
            else ""
        )
    )


def _timescale_installed() -> bool:
    return any(PG_LIB.glob("timescaledb*.so"))


def stop(s: Settings) -> None:
    """Fast shutdown of the cluster opsdash started (its data stays)."""
    data = s.opsdash_home / "pg" / "data"
    if not (data / "postmaster.pid").exists():
        return
    log("stopping PostgreSQL")
    try:
        _pg_run(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"])
    except subprocess.CalledProcessError as exc:
        log(f"pg_ctl stop: {exc.stderr.strip()}")


def create_databases(s: Settings) -> None:
    """Create the warehouse, source, Dagster and MLflow databases that do not exist yet."""
    import psycopg

    admin = s.warehouse_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        existing = {r[0] for r in conn.execute("select datname from pg_database")}
        for db in DATABASES:
            if db not in existing:
                log(f"creating database {db}")
                conn.execute(f'create database "{db}"')  # identifiers from a constant list

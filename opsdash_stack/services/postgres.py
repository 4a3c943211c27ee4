"""The local PostgreSQL 15 cluster: initdb once, start, stop, create the four databases.

Bound to 127.0.0.1, its data, socket and log live in one cluster directory (`cluster_dir`):

- run by a normal user, the cluster runs as that user under `OPSDASH_HOME/pg`;
- run as root (CI, containers), it must run as the `postgres` OS user (the server refuses
  root), which cannot enter `OPSDASH_HOME` (mode 0700). The cluster then lives in a directory of
  its own under `/var/lib/opsdash/`, owned by `postgres` (like Debian's `/var/lib/postgresql`),
  one per `OPSDASH_HOME` path. No directory above the project is ever chmod-ed.

A home and its cluster directory share a random id (`OPSDASH_HOME/pg-cluster`, `<dir>/owner`):
a home removed and created again at the same path (`scripts/test.sh` does so) finds a cluster
that is not its own, and that one is stopped and wiped before a fresh initdb. A cluster that an
older release kept at `OPSDASH_HOME/pg/data` while running as root moves to its directory under
`/var/lib/opsdash` on the next start (its data kept).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path

from opsdash_core.db import (
    APP_ROLE,
    DAGSTER_ROLE,
    MLFLOW_ROLE,
    PIPELINE_ROLE,
    SOURCE_READER_ROLE,
)
from opsdash_core.settings import Settings
from opsdash_stack.console import log
from opsdash_stack.probes import ServiceError, port_open, wait_for

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_LIB = Path("/usr/lib/postgresql/15/lib")
PG_OS_USER = "postgres"
ROOT_CLUSTERS = Path("/var/lib/opsdash")
DATABASES = ("ops", "marketplace", "dagster", "mlflow")


def _as_root() -> bool:
    return os.geteuid() == 0


def cluster_dir(s: Settings) -> Path:
    """The directory holding `data/`, the socket and (as root) the server log."""
    if not _as_root():
        return s.opsdash_home / "pg"
    return root_cluster_dir(s.opsdash_home)


def root_cluster_dir(opsdash_home: Path) -> Path:
    """Where the cluster of the instance at `opsdash_home` lives when started as root: outside
    the home, so removing a home leaves its cluster behind (remove both for a fresh start)."""
    home = opsdash_home.resolve()
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:12]
    return ROOT_CLUSTERS / f"{home.name.lstrip('.') or 'home'}-{digest}"


def data_dir(s: Settings) -> Path:
    return cluster_dir(s) / "data"


def server_log(s: Settings) -> Path:
    """As root the server cannot write into OPSDASH_HOME/logs: its log sits with its data (a
    symlink in the logs directory points there)."""
    return cluster_dir(s) / "postgres.log" if _as_root() else s.log_dir / "postgres.log"


def _pg_run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL binary as the cluster's OS user (the server refuses root); from `/`,
    since the postgres user may not be allowed into the caller's working directory."""
    cmd = [str(PG_BIN / args[0]), *args[1:]]
    if _as_root():
        cmd = ["runuser", "-u", PG_OS_USER, "--", *cmd]
    return subprocess.run(cmd, check=True, text=True, capture_output=True, cwd="/", **kw)  # type: ignore[call-overload]


def _chown_tree(path: Path, user: str) -> None:
    if not _as_root():
        return
    pw = pwd.getpwnam(user)
    for p in [path, *path.rglob("*")]:
        os.chown(p, pw.pw_uid, pw.pw_gid, follow_symlinks=False)


def _private_dir(path: Path) -> None:
    """mkdir -p with mode 0700 for what we create; owned by the cluster's OS user as root."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    if _as_root():
        pw = pwd.getpwnam(PG_OS_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _stop_dir(data: Path) -> None:
    if (data / "postmaster.pid").exists():
        try:
            _pg_run(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"])
        except subprocess.CalledProcessError as exc:
            log(f"pg_ctl stop: {exc.stderr.strip()}")


def _claim_cluster_dir(s: Settings) -> None:
    """As root: make the cluster directory this home's own (see the module docstring)."""
    cdir = cluster_dir(s)
    _private_dir(ROOT_CLUSTERS)
    marker = s.opsdash_home / "pg-cluster"
    mine = marker.read_text().strip() if marker.exists() else ""
    owner = cdir / "owner"
    theirs = owner.read_text().strip() if owner.exists() else ""
    if mine and mine == theirs:
        return
    if cdir.exists():
        log(f"{cdir} belongs to an earlier {s.opsdash_home}: stopping and removing it")
        _stop_dir(cdir / "data")
        shutil.rmtree(cdir)
    _private_dir(cdir)
    ident = secrets.token_hex(16)
    for path in (owner, marker):
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(ident + "\n")
    _move_legacy_cluster(s, cdir)


def _move_legacy_cluster(s: Settings, cdir: Path) -> None:
    """An older release ran the root-owned deployment's cluster inside OPSDASH_HOME (and made
    every parent directory world-traversable for it): move it, data and all."""
    legacy = s.opsdash_home / "pg" / "data"
    if not (legacy / "PG_VERSION").exists():
        return
    log(f"moving the PostgreSQL cluster from {legacy} to {cdir / 'data'}")
    _stop_dir(legacy)
    shutil.move(str(legacy), str(cdir / "data"))
    _chown_tree(cdir, PG_OS_USER)
    conf = cdir / "data" / "postgresql.conf"
    conf.write_text(conf.read_text() + f"unix_socket_directories = '{cdir}'\n")


def _link_log(s: Settings, logf: Path) -> None:
    """`OPSDASH_HOME/logs/postgres.log` names the server log wherever it is."""
    link = s.log_dir / "postgres.log"
    if link == logf or link.is_symlink() or link.exists():
        return
    link.symlink_to(logf)


def start(s: Settings) -> None:
    """Initialise the cluster on first use, then start it (a no-op when it already runs)."""
    s.opsdash_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if _as_root():
        _claim_cluster_dir(s)
    else:
        _private_dir(cluster_dir(s))
    data = data_dir(s)
    logf = server_log(s)
    s.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if (data / "PG_VERSION").exists():
        write_tuning(data)  # applied by the start below, or by the next one if already running
    if port_open(s.pg_port) and (data / "postmaster.pid").exists():
        log(f"PostgreSQL already running on 127.0.0.1:{s.pg_port}")
        return
    if not (data / "PG_VERSION").exists():
        log(f"initialising PostgreSQL cluster in {data}")
        _private_dir(data)
        pwfile = cluster_dir(s) / "pwfile"
        pwfile.unlink(missing_ok=True)  # left by an interrupted run; O_EXCL needs it gone
        # 0600 from creation: there is never a moment when another user could read it.
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(s.pg_password + "\n")
        _chown_tree(pwfile, PG_OS_USER)
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
        write_tuning(data)
    if not logf.exists():
        fd = os.open(logf, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        os.close(fd)
        _chown_tree(logf, PG_OS_USER)
    _link_log(s, logf)
    log(f"starting PostgreSQL on 127.0.0.1:{s.pg_port}")
    try:
        _pg_run(["pg_ctl", "-D", str(data), "-l", str(logf), "-w", "-t", "60", "start"])
    except subprocess.CalledProcessError as exc:
        raise ServiceError(f"PostgreSQL did not start: {exc.stderr.strip()} (log: {logf})") from exc
    wait_for(lambda: port_open(s.pg_port), "PostgreSQL", 60, logf)


def _pg_conf(s: Settings) -> str:
    socket_dir = cluster_dir(s)
    return (
        "\n# opsdash: loopback only; memory, WAL and parallelism sized in " + TUNING_FILE + "\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {s.pg_port}\n"
        f"unix_socket_directories = '{socket_dir}'\n"
        "max_connections = 200\n"
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


TUNING_FILE = "opsdash-tuning.conf"
INCLUDE_LINE = f"include_if_exists = '{TUNING_FILE}'"
MB = 1024 * 1024


def _clamp_mb(value_bytes: float, low_mb: int, high_mb: int) -> int:
    return int(min(max(value_bytes / MB, low_mb), high_mb))


def tuning(ram_bytes: int, cores: int) -> dict[str, str]:
    """PostgreSQL settings for a machine with `ram_bytes` of memory and `cores` CPUs.

    The cluster shares the machine with Dagster runs, dbt, MLflow and Streamlit, so it takes a
    quarter of memory for its cache and leaves the OS page cache the rest; caps keep each
    process far below 8 GiB on big machines, floors keep a 2 GiB laptop working. The table in
    the README repeats these formulas."""
    cores = max(cores, 1)
    max_wal_mb = _clamp_mb(ram_bytes / 4, 1024, 4096)
    return {
        "shared_buffers": f"{_clamp_mb(ram_bytes / 4, 128, 4096)}MB",
        "effective_cache_size": f"{_clamp_mb(ram_bytes * 3 / 4, 512, 1024 * 1024)}MB",
        # Per sort/hash node of each query: 200 connections never all sort at once.
        "work_mem": f"{_clamp_mb(ram_bytes / 256, 4, 64)}MB",
        "maintenance_work_mem": f"{_clamp_mb(ram_bytes / 16, 64, 1024)}MB",
        # The first load of a million customers writes gigabytes: checkpoints by time, not size.
        "max_wal_size": f"{max_wal_mb}MB",
        "min_wal_size": f"{max(max_wal_mb // 8, 80)}MB",
        "checkpoint_timeout": "15min",
        "checkpoint_completion_target": "0.9",
        # Full-page images compressed with lz4: pglz ("on") tripled the time of every index
        # build (each new index page is a full-page image), lz4 costs about what off does.
        "wal_compression": "lz4",
        # This cluster serves no replica and keeps no WAL archive (backups are pg_dump; a
        # deployment that needs streaming replicas or point-in-time recovery runs managed
        # PostgreSQL, deploy/README.md): a table dbt creates, with its indexes, is then written
        # once rather than also to the WAL - 10% off a full build's statements at S10.
        "wal_level": "minimal",
        "max_wal_senders": "0",
        "max_parallel_workers_per_gather": str(min(max(cores // 2, 1), 4)),
        "max_parallel_maintenance_workers": str(min(max(cores // 2, 1), 4)),
        "max_parallel_workers": str(min(max(cores, 2), 8)),
    }


def machine_resources() -> tuple[int, int]:
    """(memory bytes, CPUs) this process may use: the machine's, or a container's cgroup
    limits when lower (a container sees the host's /proc/meminfo)."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and 0 < int(raw) < ram:
            ram = int(raw)
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = max(1, min(cores, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return ram, cores


def write_tuning(data: Path) -> dict[str, str]:
    """Write this machine's settings to `<data>/opsdash-tuning.conf` and include it last from
    postgresql.conf (so it wins over the fixed values an older release wrote there); the
    server reads it when it starts."""
    ram, cores = machine_resources()
    values = tuning(ram, cores)
    body = (
        f"# Written by `opsdash up` for this machine ({ram // MB} MB RAM, {cores} CPUs);\n"
        "# rewritten on every start, so edit postgresql.auto.conf (ALTER SYSTEM) to override.\n"
        + "".join(f"{name} = '{value}'\n" for name, value in values.items())
    )
    path = data / TUNING_FILE
    if not path.exists() or path.read_text() != body:
        tmp = data / (TUNING_FILE + ".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
        _chown_tree(tmp, PG_OS_USER)
        tmp.replace(path)
    conf = data / "postgresql.conf"
    text = conf.read_text()
    if INCLUDE_LINE not in text:
        conf.write_text(
            text + f"\n# opsdash: sized for this machine (see {TUNING_FILE})\n{INCLUDE_LINE}\n"
        )
    return values


def _timescale_installed() -> bool:
    return any(PG_LIB.glob("timescaledb*.so"))


def stop(s: Settings) -> None:
    """Fast shutdown of the cluster opsdash started (its data stays)."""
    data = data_dir(s)
    if not (data / "postmaster.pid").exists():
        return
    log("stopping PostgreSQL")
    _stop_dir(data)


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


# --- least privilege (migration 0013 creates the roles; README "Security") ------------------

# The roles whose passwords `.env` holds, and the databases two of them own.
SERVICE_ROLES = (APP_ROLE, PIPELINE_ROLE, SOURCE_READER_ROLE, DAGSTER_ROLE, MLFLOW_ROLE)
OWNED_DATABASES = {DAGSTER_ROLE: "dagster", MLFLOW_ROLE: "mlflow"}

# Hand every object of schema public to the database's role (tables carry their indexes and
# linked sequences; the objects an older release created as the bootstrap superuser cannot be
# `REASSIGN OWNED`). The role comes in as a setting (a DO block takes no parameters).
HAND_OVER_DATABASE = """
do $$
declare
    target name := current_setting('opsdash.owner');
    obj record;
begin
    for obj in
        select format('%s %s', case c.relkind when 'v' then 'view'
                      when 'm' then 'materialized view' when 'S' then 'sequence'
                      else 'table' end, c.oid::regclass) as what
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'S')
          and c.relowner <> to_regrole(target)
          and not (c.relkind = 'S' and exists (
              select from pg_depend d where d.objid = c.oid and d.deptype in ('a', 'i')))
          and not c.relispartition
        union all
        select format('type %s', t.oid::regtype)
        from pg_type t join pg_namespace n on n.oid = t.typnamespace
        where n.nspname = 'public' and t.typtype in ('e', 'd') and t.typowner <> to_regrole(target)
    loop
        execute format('alter %s owner to %I', obj.what, target);
    end loop;
end $$;
"""


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of `password`: `ALTER ROLE ... PASSWORD` gets this,
    never the password itself, so no server log or statement view can show it."""
    import base64
    import hmac

    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    stored_key = hashlib.sha256(client_key).digest()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _local_role(s: Settings, url: str) -> tuple[str, str, str] | None:
    """(role, password, database) when `url` names one of our roles on this cluster."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.username not in SERVICE_ROLES or parts.port != s.pg_port or not parts.password:
        return None
    if parts.hostname not in ("127.0.0.1", "localhost"):
        return None
    return parts.username, unquote(parts.password), parts.path.lstrip("/")


def apply_roles(s: Settings) -> list[str]:
    """Give the service roles their passwords from `.env` and their other databases' rights:
    Dagster's and MLflow's databases become their roles' (objects included), the app may read
    Dagster's run storage, the source reader may SELECT the simulated marketplace. Idempotent;
    runs after the migrations (which create the roles). Returns the roles it set up."""
    import psycopg
    from psycopg import sql

    urls = (
        s.app_database_url,
        s.pipeline_database_url,
        s.source_reader_url,
        s.dagster_pg_url,
        s.mlflow_backend_url,
    )
    found = {r[0]: r for url in urls if (r := _local_role(s, url))}
    if not found:
        return []
    base = s.warehouse_url.rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        for role, password, _ in found.values():
            conn.execute(
                sql.SQL("alter role {} with login password {}").format(
                    sql.Identifier(role), sql.Literal(scram_verifier(password))
                )
            )
        for role, db in OWNED_DATABASES.items():
            if role in found and found[role][2] == db:
                conn.execute(
                    sql.SQL("alter database {} owner to {}").format(
                        sql.Identifier(db), sql.Identifier(role)
                    )
                )
    for role, db in OWNED_DATABASES.items():
        if role in found and found[role][2] == db:
            with psycopg.connect(f"{base}/{db}", autocommit=True) as conn:
                conn.execute("select set_config('opsdash.owner', %s, false)", (role,))
                conn.execute(HAND_OVER_DATABASE)
                if role == DAGSTER_ROLE and APP_ROLE in found:
                    # The app's Ops-health page reads runs and ticks; it never writes them.
                    conn.execute(
                        "grant usage on schema public to opsdash_app;"
                        " grant select on all tables in schema public to opsdash_app;"
                        " alter default privileges for role opsdash_dagster in schema public"
                        " grant select on tables to opsdash_app;"
                    )
    reader = found.get(SOURCE_READER_ROLE)
    if reader:
        with psycopg.connect(f"{base}/{reader[2]}", autocommit=True) as conn:
            # Every schema (the simulated source has `public` and `support`), and by default
            # privileges those and tables the simulator creates later as the superuser.
            owner = sql.Identifier(s.libpq_parts()["user"])
            conn.execute(
                sql.SQL(
                    "alter default privileges for role {owner}"
                    " grant usage on schemas to opsdash_source_reader;"
                    " alter default privileges for role {owner}"
                    " grant select on tables to opsdash_source_reader;"
                ).format(owner=owner)
            )
            schemas = conn.execute(
                "select nspname from pg_namespace"
                " where nspname not like 'pg\\_%' and nspname <> 'information_schema'"
            ).fetchall()
            for (schema,) in schemas:
                conn.execute(
                    sql.SQL(
                        "grant usage on schema {s} to opsdash_source_reader;"
                        " grant select on all tables in schema {s} to opsdash_source_reader;"
                    ).format(s=sql.Identifier(schema))
                )
    return sorted(found)

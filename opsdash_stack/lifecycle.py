"""`opsdash up` / `down`: bring the whole product up on one machine, idempotently."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from opsdash_core.settings import PROJECT_ROOT, Settings
from opsdash_stack import progress
from opsdash_stack.console import log
from opsdash_stack.probes import ServiceError
from opsdash_stack.services import dagster, postgres, redis
from opsdash_stack.services.catalog import python_services
from opsdash_stack.supervisor import Service, start_service, stop_service, venv_bin

DEFAULT_SCALE = 20_000
DEFAULT_DAYS = 180

# Every service starts with this umask (children inherit it): logs, the outbox, MLflow
# artifacts, Data Docs and Dagster's files are readable by the deployment's user only.
PRIVATE_UMASK = 0o077
# What older releases left group/world-readable in OPSDASH_HOME (the home itself becomes 0700).
PRIVATE_TREES = ("logs", "outbox", "mlflow-artifacts", "data_docs", "gx", "dagster", "redis", "run")


def secure_home(s: Settings) -> None:
    """OPSDASH_HOME mode 0700, and what is already in it private (group/other bits removed).

    Symlinks are left alone (they may point outside the home); so is `pg/`, which belongs to
    the cluster's own OS user."""
    home = s.opsdash_home
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    home.chmod(0o700)
    for name in PRIVATE_TREES:
        top = home / name
        if top.is_symlink() or not top.is_dir():
            continue
        for entry in [top, *top.rglob("*")]:  # rglob does not descend into symlinks
            if entry.is_symlink():
                continue
            mode = entry.stat().st_mode
            if mode & 0o077:
                entry.chmod(mode & 0o7700)


def start_services(s: Settings, services: list[Service]) -> None:
    """Start `services` under the private umask (restored afterwards)."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        for svc in services:
            start_service(s, svc)
    finally:
        os.umask(previous)


def migrate(s: Settings) -> None:
    """Apply the warehouse migrations (Alembic); a no-op when already at head."""
    from opsdash_core.migrate import upgrade

    mode = upgrade(s.warehouse_url)
    log(f"warehouse migrated (time-series layout: {mode})")


def source_has_data(s: Settings) -> bool:
    """True once the simulated marketplace holds sessions (so `up` generates history once)."""
    with psycopg.connect(s.source_url) as conn:
        row = conn.execute("select to_regclass('public.tutoring_sessions') is not null").fetchone()
        if not row or not row[0]:
            return False
        row = conn.execute("select exists (select 1 from tutoring_sessions)").fetchone()
        return bool(row and row[0])


def warehouse_built(s: Settings) -> bool:
    """True once the marts hold data (so `up` materializes everything only the first time)."""
    with psycopg.connect(s.warehouse_url) as conn:
        row = conn.execute("select to_regclass('marts.customer_health') is not null").fetchone()
        if not row or not row[0]:
            return False
        row = conn.execute("select exists (select 1 from marts.customer_health)").fetchone()
        return bool(row and row[0])


def run_step(
    argv: list[str], what: str, env: dict[str, str] | None = None, cwd: Path = PROJECT_ROOT
) -> None:
    """Run one set-up step as a child process, streaming its output; fail loudly."""
    log(what)
    started = time.monotonic()
    result = subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, check=False)
    if result.returncode != 0:
        raise ServiceError(f"{what} failed (exit {result.returncode})")
    log(f"{what}: done in {time.monotonic() - started:.0f}s")


def dagster_env(s: Settings) -> dict[str, str]:
    home = dagster.dagster_home(s)
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    return {"DAGSTER_HOME": str(home)}


def prepare_dbt(s: Settings) -> None:
    from opsdash_core.dbt_env import dbt_env

    run_step(
        [
            venv_bin("dbt"),
            "parse",
            "--quiet",
            "--project-dir",
            "dbt_project",
            "--profiles-dir",
            "dbt_project",
        ],
        "parsing the dbt project (manifest for Dagster)",
        # Dagster's runs copy this parse's partial_parse.msgpack; dbt reparses everything when
        # the profile (user, role) differs, so parse with the profile the runs use.
        env=dbt_env(pipeline_settings(s)),
    )


BUILD_WHAT = "materializing every asset once (ingest -> dbt -> train -> score)"


def build_log(s: Settings) -> Path:
    """Where the first build's full output goes (Dagster's event log and dbt's)."""
    return s.log_dir / "first-build.log"


def run_asset_total(s: Settings, run_id: str) -> int | None:
    """How many assets the run was launched for, from the run Dagster stored (its
    `asset_selection`, else its planned materializations); None when it cannot be read, and
    the bar then shows no total. Asked when the run starts, after Dagster created it."""
    try:
        with psycopg.connect(s.dagster_pg_url, connect_timeout=5) as conn:
            row = conn.execute("select run_body from runs where run_id = %s", (run_id,)).fetchone()
            planned = conn.execute(
                "select count(*) from event_logs where run_id = %s"
                " and dagster_event_type = 'ASSET_MATERIALIZATION_PLANNED'",
                (run_id,),
            ).fetchone()
    except psycopg.Error:
        return None
    if not row:
        return None
    try:
        selection = json.loads(row[0]).get("asset_selection") or {}
    except (ValueError, AttributeError):
        selection = {}
    keys = selection.get("__frozenset__") if isinstance(selection, dict) else selection
    if isinstance(keys, list) and keys:
        return len(keys)
    # A job run over all of a job's assets stores no selection: Dagster wrote one "planned"
    # event per asset when it created the run.
    return int(planned[0]) if planned and planned[0] else None


def pipeline_settings(s: Settings) -> Settings:
    """The settings as Dagster's processes see them (`opsdash_core.db.service_env`)."""
    from opsdash_core.db import service_env

    env = service_env(s, "pipeline")
    return s.model_copy(
        update={"warehouse_url": env["WAREHOUSE_URL"], "dbt_role": env.get("OPSDASH_DBT_ROLE", "")}
    )


def materialize_all(s: Settings) -> None:
    """The first build, with progress instead of Dagster's debug log (which goes to a file)."""
    from opsdash_core.db import service_env
    from opsdash_core.dbt_env import dbt_env

    log(BUILD_WHAT)
    log_path = build_log(s)
    pipeline = service_env(s, "pipeline")
    rc, state, lines = progress.run_build(
        # The `first_build` job: every asset, two steps at a time (orchestration/defs/build).
        [
            venv_bin("dagster"),
            "job",
            "execute",
            "-m",
            "orchestration.definitions",
            "-j",
            "first_build",
        ],
        # As Dagster's own processes run: the pipeline's role, dbt building as transform.
        env={**os.environ, **dagster_env(s), **dbt_env(pipeline_settings(s)), **pipeline},
        cwd=dagster.dagster_home(s),  # not PROJECT_ROOT: Dagster would load its `.env`
        log_path=log_path,
        total_lookup=lambda run_id: run_asset_total(s, run_id),
    )
    summary = state.summary(time.monotonic())
    if rc != 0 or state.run_failed:
        failed = state.failed_steps[0] if state.failed_steps else None
        where = f" in step {failed}" if failed else ""
        print("".join(progress.failure_excerpt(lines, failed)), end="", file=sys.stderr)
        raise ServiceError(
            f"{BUILD_WHAT} failed{where} (exit {rc}, {summary}); full log: {log_path}"
        )
    log(f"{BUILD_WHAT}: done ({summary}); full log: {log_path}")


def infra_up(s: Settings) -> None:
    """PostgreSQL, Redis, databases and migrations: what every other part needs."""
    os.umask(PRIVATE_UMASK)
    postgres.start(s)  # first: it may move an older release's cluster out of the home
    secure_home(s)
    redis.start(s)
    postgres.create_databases(s)
    migrate(s)  # creates the service roles (migration 0013)
    roles = postgres.apply_roles(s)
    if roles:
        log(f"database roles ready: {', '.join(roles)}")


def up(s: Settings, scale: int, days: int, materialize: bool = True) -> None:
    infra_up(s)
    if s.simulator_enabled and not source_has_data(s):
        run_step(
            [
                venv_bin("opsdash"),
                "sim",
                "generate",
                "--scale",
                str(scale),
                "--days",
                str(days),
            ],
            f"generating simulated marketplace history ({scale:,} customers, {days} days)",
        )
    ensure_admin(s)
    prepare_dbt(s)
    env_for_children = {**dagster_env(s)}
    os.environ.update(env_for_children)
    by_name = {svc.name: svc for svc in python_services(s)}
    first = ("sinks", "support-api", "mlflow")
    start_services(s, [by_name[name] for name in first if name in by_name])
    if materialize and not warehouse_built(s):
        materialize_all(s)
    start_services(s, [svc for name, svc in by_name.items() if name not in first])
    print_urls(s)


def ensure_admin(s: Settings) -> None:
    from opsdash_core.accounts import ensure_admin as _ensure_admin

    pw_file = s.opsdash_home / "admin-password"
    with psycopg.connect(s.warehouse_url) as conn:
        created = _ensure_admin(conn, pw_file)
        conn.commit()
    if created:
        log(f"created user 'admin'; its password is in {pw_file}")


def down(s: Settings, purge: bool = False) -> None:
    for svc in reversed(python_services(s)):
        stop_service(s, svc.name)
    redis.stop(s)
    postgres.stop(s)
    if purge:
        cluster = postgres.cluster_dir(s)
        shutil.rmtree(cluster, ignore_errors=True)
        log(f"removed the PostgreSQL cluster {cluster}")


def print_urls(s: Settings) -> None:
    pw_file: Path = s.opsdash_home / "admin-password"
    lines = [
        "",
        "opsdash is up:",
        f"  Streamlit app (ops)      http://127.0.0.1:{s.streamlit_port}   user admin, password in {pw_file}",
        f"  Dagster UI (pipeline)    http://127.0.0.1:{s.dagster_port}",
        f"  MLflow UI (models)       http://127.0.0.1:{s.mlflow_port}",
        f"  Support API (simulated)  http://127.0.0.1:{s.support_api_port}/health",
        f"  PostgreSQL               127.0.0.1:{s.pg_port} (credentials in .env)",
        f"  Redis                    127.0.0.1:{s.redis_port}",
        f"  Logs                     {s.log_dir}",
    ]
    print("\n".join(lines), flush=True)

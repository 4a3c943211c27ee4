"""Least privilege in PostgreSQL (issue 13 point 2): one role per component.

Most tests work on a scratch warehouse at the latest migration and take a component's role with
`SET ROLE` from the superuser's connection: privilege checks then use that role only, exactly as
a login would. The last ones log in with the URLs `opsdash up --infra-only` wrote to the test
stack's `.env` and whose passwords it set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import errors

from alerting import operations as ops
from alerting.recommendation_actions import accept
from opsdash_core import accounts
from opsdash_core.accounts import User
from opsdash_core.db import service_env
from opsdash_core.settings import PROJECT_ROOT, Settings, get_settings
from opsdash_stack import envfile
from opsdash_stack.services import dagster, simulator, streamlit, watchdog
from opsdash_stack.services.postgres import scram_verifier

pytestmark = pytest.mark.integration

OPERATOR = User(id=2, username="otto", role="operator")


@contextmanager
def as_role(url: str, role: str) -> Iterator[psycopg.Connection]:
    """A connection of the superuser that has become `role` (for every later transaction)."""
    with psycopg.connect(url) as conn:
        conn.execute(f"set role {role}")
        conn.commit()
        yield conn


def refused(conn: psycopg.Connection, statement: str) -> bool:
    """True when PostgreSQL refuses `statement` for lack of privilege (then rolled back)."""
    try:
        conn.execute(statement)
    except errors.InsufficientPrivilege:
        conn.rollback()
        return True
    conn.rollback()
    return False


def open_alert(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "insert into app.alerts (rule, entity_type, entity_id, severity, title, dedupe_key)"
        " values ('tutor_underperforming', 'tutor', 7, 'warning', 'Tutor', 'tu:7') returning id"
    ).fetchone()
    assert row is not None
    return int(row[0])


# --- the app role ---------------------------------------------------------------------------


def test_app_role_cannot_drop_write_raw_or_read_pg_authid(warehouse_url: str) -> None:
    with as_role(warehouse_url, "opsdash_app") as conn:
        assert refused(conn, "drop table app.users")
        assert refused(conn, "drop schema raw cascade")
        assert refused(conn, "drop table raw.customers")
        assert refused(conn, "truncate app.audit_log")
        assert refused(conn, "insert into raw.customers default values")
        assert refused(conn, "update raw.watermarks set watermark = now()")
        assert refused(conn, "delete from raw.sessions")
        assert refused(conn, "select rolpassword from pg_authid")
        assert refused(conn, "create table app.mine (i int)")
        assert refused(conn, "delete from app.users")
        assert refused(conn, "delete from app.audit_log")
        assert refused(conn, "update app.alerts set severity = 'info'")
        assert refused(conn, "insert into ml.churn_scores default values")
        assert refused(conn, "insert into app.notification_outbox default values")
        row = conn.execute("select rolsuper from pg_roles where rolname = current_user")
        assert row.fetchone() == (False,)
        # It reads what its pages show.
        for relation in ("raw.watermarks", "ml.churn_scores", "app.alerts"):
            conn.execute(f"select count(*) from {relation}")
        conn.execute("select count(*) from quality.check_runs")
        conn.rollback()


def test_app_role_reads_no_raw_record_but_the_load_log(warehouse_url: str) -> None:
    """The app never reads raw (tests/unit/test_app_sql_reads_no_raw.py), so its role cannot:
    no customer's raw record, no quarantined payload; the Models & data page still lists
    every raw table with its last load."""
    from app_streamlit.models_data import RAW_FRESHNESS_SQL

    with psycopg.connect(warehouse_url) as admin:
        tables = [
            r[0]
            for r in admin.execute(
                "select tablename from pg_tables where schemaname = 'raw'"
                " and tablename not in ('watermarks', 'quarantine') order by 1"
            )
        ]
        admin.execute(
            "insert into raw.quarantine (table_name, source_key, reason, payload, run_id,"
            " payload_hash) values ('customers', '1', 'bad email', '{\"email\": \"x\"}',"
            " 'r1', 'h1')"
        )
        admin.execute(
            "insert into raw.watermarks (table_name, watermark, rows_loaded)"
            " values ('customers', now(), 3)"
        )
    assert "customers" in tables
    with as_role(warehouse_url, "opsdash_app") as conn:
        for table in [*tables, "quarantine"]:
            assert refused(conn, f"select count(*) from raw.{table}"), table
        assert refused(conn, "select payload from raw.quarantine")
        shown = conn.execute(RAW_FRESHNESS_SQL).fetchall()
        assert [r[0] for r in shown] == tables
        assert dict((r[0], r[2]) for r in shown)["customers"] == 3
        conn.rollback()
    # A raw table a later migration adds is no more readable by the app.
    with psycopg.connect(warehouse_url) as admin:
        admin.execute("create table raw.later_source (id int primary key, secret text)")
    with as_role(warehouse_url, "opsdash_app") as conn:
        assert refused(conn, "select * from raw.later_source")
        assert "later_source" in [r[0] for r in conn.execute(RAW_FRESHNESS_SQL).fetchall()]
        conn.rollback()


def test_app_role_does_what_the_app_does(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as admin:
        alert_id = open_alert(admin)
        admin.execute(
            "insert into app.recommendations (entity_type, entity_id, rec_type, reason_code,"
            " reason, action) values ('customer', 1, 'check_in_call', 'disengaging',"
            " 'no session in 30 days', 'Call')"
        )
        rec_id = admin.execute("select id from app.recommendations").fetchone()[0]  # type: ignore[index]
    with as_role(warehouse_url, "opsdash_app") as conn:
        accounts.create_user(conn, "ada", "a-long-password", "admin", actor="admin")
        accounts.create_user(conn, "nora", "a-long-password", "operator", actor="ada")
        accounts.set_password(conn, "nora", "another-long-password", actor="admin")
        accounts.set_role(conn, "nora", "viewer", actor="ada")
        accounts.set_active(conn, "nora", False, actor="ada")
        conn.commit()
        accounts.audit(conn, "nora", "login_success")
        conn.commit()
        assert ops.acknowledge(conn, alert_id, OPERATOR, "on it")["status"] == "acknowledged"
        assert ops.resolve(conn, alert_id, OPERATOR, "fixed")["status"] == "resolved"
        silence = ops.create_silence(
            conn,
            OPERATOR,
            rule="tutor_underperforming",
            ends_at=datetime.now(UTC) + timedelta(hours=1),
            comment="maintenance",
        )
        ops.expire_silence(conn, silence, OPERATOR)
        accept(conn, rec_id, OPERATOR)
        conn.execute(
            "insert into app.user_sessions (jti, username, expires_at)"
            " values ('j1', 'nora', now() + interval '1 hour')"
        )
        conn.execute("update app.user_sessions set expires_at = now() where jti = 'j1'")
        conn.execute("delete from app.user_sessions where jti = 'j1'")
        conn.commit()


# --- the pipeline and dbt ---------------------------------------------------------------------


def test_pipeline_writes_raw_ml_quality_and_alerts_but_not_accounts(warehouse_url: str) -> None:
    with as_role(warehouse_url, "opsdash_pipeline") as conn:
        conn.execute(
            "insert into raw.watermarks (table_name, watermark) values ('customers', now())"
        )
        conn.execute("delete from ml.churn_scores")
        conn.execute("delete from quality.check_runs")
        open_alert(conn)
        conn.execute("select count(*) from app.users")
        conn.commit()
        assert refused(conn, "insert into app.users (username, password_hash) values ('x', 'y')")
        assert refused(conn, "insert into app.audit_log (action) values ('x')")
        assert refused(conn, "drop table app.alerts")  # raw's tables it owns (as ingest)
        assert refused(conn, "select rolpassword from pg_authid")


def test_ingestion_owns_raw_and_may_rebuild_its_indexes(warehouse_url: str) -> None:
    """A first load drops raw's non-unique indexes and rebuilds them (ingest/loader.py)."""
    with as_role(warehouse_url, "opsdash_pipeline") as conn:
        conn.execute("drop index raw.customers_updated_idx")
        conn.execute("create index customers_updated_idx on raw.customers (updated_at)")
        conn.commit()
    with as_role(warehouse_url, "opsdash_app") as conn:
        assert refused(conn, "drop index raw.customers_updated_idx")
    with psycopg.connect(warehouse_url) as conn:
        owners = conn.execute(
            "select distinct tableowner from pg_tables where schemaname = 'raw'"
        ).fetchall()
    assert owners == [("opsdash_ingest",)]


def test_source_reader_and_mlflow_roles_see_nothing_of_the_warehouse(warehouse_url: str) -> None:
    for role in ("opsdash_source_reader", "opsdash_mlflow", "opsdash_dagster"):
        with as_role(warehouse_url, role) as conn:
            assert refused(conn, "select count(*) from app.users"), role
            assert refused(conn, "select count(*) from raw.customers"), role
            assert refused(conn, "create table public.mine (i int)"), role


def test_dbt_builds_as_transform_and_the_readers_read_what_it_builds(
    warehouse_url: str,
) -> None:
    with as_role(warehouse_url, "opsdash_transform") as conn:
        conn.execute("create table marts.fresh as select count(*) as n from raw.customers")
        conn.execute("create view staging.v as select * from app.alerts")
        conn.execute("create table intermediate.i as select 1 as one")
        conn.execute("create view marts.over_raw as select count(*) as n from raw.customers")
        conn.execute("select count(*) from ml.churn_scores")
        conn.commit()
        assert refused(conn, "insert into raw.customers default values")
    for role in ("opsdash_app", "opsdash_ml", "opsdash_pipeline"):
        with as_role(warehouse_url, role) as conn:
            conn.execute("select n from marts.fresh")
            conn.execute("select n from marts.over_raw")  # with dbt's rights, not the reader's
            conn.execute("select count(*) from staging.v")  # the customer page's support calls
            conn.execute("select one from intermediate.i")  # and its sessions
            conn.rollback()
    with as_role(warehouse_url, "opsdash_app") as conn:
        assert refused(conn, "drop table marts.fresh")
        assert refused(conn, "insert into marts.fresh values (1)")
    with as_role(warehouse_url, "opsdash_pipeline") as conn:  # refreshes rollups: an owner
        conn.execute("alter table marts.fresh add column m int")
        conn.commit()


def test_an_existing_deployment_hands_its_dbt_objects_to_transform(
    scratch_db: object,
) -> None:
    """A warehouse an older release built (marts as the superuser) upgrades in place."""
    from alembic import command
    from alembic.config import Config

    url = scratch_db("wh_old")  # type: ignore[operator]
    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "opsdash_core" / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0012")
    with psycopg.connect(url) as conn:
        conn.execute("create schema marts")
        conn.execute("create table marts.customer_health (id int primary key)")
        conn.execute("create materialized view marts.rollup as select 1 as one")
        conn.execute("create view marts.v as select * from marts.customer_health")
        conn.execute(
            "create table marts.parted (at date) partition by range (at);"
            " create table marts.parted_2026 partition of marts.parted"
            " for values from ('2026-01-01') to ('2027-01-01')"
        )
    command.upgrade(cfg, "heads")
    with psycopg.connect(url) as conn:
        owners: dict[str, str] = dict(
            conn.execute(
                "select c.relname, c.relowner::regrole::text from pg_class c"
                " join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = 'marts' and c.relkind in ('r', 'p', 'v', 'm')"
            ).fetchall()
        )
    assert set(owners.values()) == {"opsdash_transform"}, owners
    with as_role(url, "opsdash_transform") as conn:  # dbt's rename-and-drop now works
        conn.execute("alter table marts.customer_health rename to customer_health__dbt_backup")
        conn.execute("drop table marts.customer_health__dbt_backup cascade")
        conn.execute("refresh materialized view marts.rollup")
        conn.commit()


def test_migrating_twice_and_a_second_database_keep_the_roles(warehouse_url: str) -> None:
    from opsdash_core.migrate import upgrade

    upgrade(warehouse_url)  # at head: a no-op
    with psycopg.connect(warehouse_url) as conn:
        roles = {
            r[0]
            for r in conn.execute("select rolname from pg_roles where rolname like 'opsdash\\_%'")
        }
    assert {
        "opsdash_ingest",
        "opsdash_transform",
        "opsdash_ml",
        "opsdash_pipeline",
        "opsdash_app",
        "opsdash_dagster",
        "opsdash_mlflow",
        "opsdash_source_reader",
    } <= roles


# --- what `opsdash up` wires ---------------------------------------------------------------


def stack_role_url(url: str, role: str) -> str:
    if urlsplit(url).username != role:
        pytest.skip(f"the test stack's .env has no {role} URL")
    return url


def test_the_app_url_logs_in_as_a_role_that_cannot_drop() -> None:
    s = get_settings()
    url = stack_role_url(s.app_database_url, "opsdash_app")
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select current_user, rolsuper from pg_roles where rolname = current_user"
        )
        assert row.fetchone() == ("opsdash_app", False)
        conn.execute("select count(*) from app.users")
        assert refused(conn, "drop table app.users")
        assert refused(conn, "drop table raw.sessions")
        assert refused(conn, "insert into raw.watermarks (table_name) values ('x')")
        assert refused(conn, "select * from pg_authid")
        assert refused(conn, "create role opsdash_mine")
    dagster_url = service_env(s, "app")["DAGSTER_PG_URL"]
    with psycopg.connect(dagster_url) as conn:  # the Ops-health page reads Dagster's runs
        assert conn.execute("select current_user").fetchone() == ("opsdash_app",)
        assert refused(conn, "create table public.mine (i int)")


def test_every_service_url_logs_in_as_its_own_role() -> None:
    s = get_settings()
    expected = {
        s.pipeline_database_url: "opsdash_pipeline",
        s.source_reader_url: "opsdash_source_reader",
        s.dagster_pg_url: "opsdash_dagster",
        s.mlflow_backend_url: "opsdash_mlflow",
    }
    for url, role in expected.items():
        with psycopg.connect(stack_role_url(url, role)) as conn:
            assert conn.execute("select current_user").fetchone() == (role,)
            owner = conn.execute(
                "select pg_get_userbyid(datdba) from pg_database where datname = current_database()"
            ).fetchone()[0]  # type: ignore[index]
            assert (owner == role) == (role in ("opsdash_dagster", "opsdash_mlflow")), role
    with psycopg.connect(s.source_reader_url) as conn:
        assert refused(conn, "create table mine (i int)")
        conn.execute("select count(*) from pg_tables")


def test_services_get_their_roles_urls() -> None:
    s = Settings(
        _env_file=None,  # type: ignore[call-arg]
        WAREHOUSE_URL="postgresql://opsdash:su@127.0.0.1:5/ops",
        SOURCE_URL="postgresql://opsdash:su@127.0.0.1:5/marketplace",
        DAGSTER_PG_URL="postgresql://opsdash_dagster:d@127.0.0.1:5/dagster",
        APP_DATABASE_URL="postgresql://opsdash_app:a@127.0.0.1:5/ops",
        PIPELINE_DATABASE_URL="postgresql://opsdash_pipeline:p@127.0.0.1:5/ops",
        SOURCE_READER_URL="postgresql://opsdash_source_reader:r@127.0.0.1:5/marketplace",
    )
    app = streamlit.service(s).env or {}
    assert app["WAREHOUSE_URL"] == s.app_database_url
    assert app["DAGSTER_PG_URL"] == "postgresql://opsdash_app:a@127.0.0.1:5/dagster"
    assert app["SOURCE_URL"] == s.source_reader_url
    for svc in (dagster.webserver(s), dagster.daemon(s), watchdog.service(s)):
        env = svc.env or {}
        assert env["WAREHOUSE_URL"] == s.pipeline_database_url, svc.name
        assert env["SOURCE_URL"] == s.source_reader_url, svc.name
        assert env["OPSDASH_DBT_ROLE"] == "opsdash_transform", svc.name
    assert (simulator.support_api(s).env or {})["SOURCE_URL"] == s.source_reader_url
    # Nothing of the superuser's in what the services are handed.
    for svc in (streamlit.service(s), dagster.daemon(s), simulator.support_api(s)):
        assert ":su@" not in " ".join((svc.env or {}).values())


def test_a_role_url_for_another_database_is_ignored() -> None:
    """An operator who points SOURCE_URL at the real marketplace is never redirected to the
    simulated one by the generated reader URL."""
    s = Settings(
        _env_file=None,  # type: ignore[call-arg]
        SOURCE_URL="postgresql://reader:x@db.example.com:5432/rails",
        SOURCE_READER_URL="postgresql://opsdash_source_reader:r@127.0.0.1:5/marketplace",
        OPSDASH_PG_PORT=5,
    )
    assert s.source_reader_url == s.source_url
    assert s.app_database_url == s.warehouse_url  # no role URL: the one URL, as before


# --- .env ------------------------------------------------------------------------------------


def test_a_fresh_env_file_holds_a_private_url_per_role(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    envfile.ensure_env_file(path, tmp_path, port_offset=60)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    values = envfile._values(path.read_text())
    passwords = set()
    for key, (role, db) in envfile.ROLE_URLS.items():
        parts = urlsplit(values[key])
        assert (parts.username, parts.port, parts.path) == (role, 55492, f"/{db}")
        passwords.add(parts.password)
    passwords.add(values["OPSDASH_PG_PASSWORD"])
    assert len(passwords) == len(envfile.ROLE_URLS) + 1


def test_an_older_env_file_gains_the_roles_and_keeps_what_was_edited(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    base = "postgresql://opsdash:old-pw@127.0.0.1:55432"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(
            "# mine\nOPSDASH_PG_PORT=55432\nOPSDASH_PG_USER=opsdash\nOPSDASH_PG_PASSWORD=old-pw\n"
            f"WAREHOUSE_URL={base}/ops\nDAGSTER_PG_URL={base}/dagster\n"
            "MLFLOW_BACKEND_URL=postgresql://me:edited@db.example.com:5432/mlflow\n"
        )
    assert not envfile.ensure_env_file(path, tmp_path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    values = envfile._values(path.read_text())
    assert path.read_text().startswith("# mine\n")
    assert values["WAREHOUSE_URL"] == f"{base}/ops"  # the superuser's, for migrations
    assert urlsplit(values["DAGSTER_PG_URL"]).username == "opsdash_dagster"
    assert values["MLFLOW_BACKEND_URL"].startswith("postgresql://me:edited@")
    assert urlsplit(values["APP_DATABASE_URL"]).username == "opsdash_app"
    assert urlsplit(values["SOURCE_READER_URL"]).port == 55432
    before = path.read_text()
    envfile.ensure_env_file(path, tmp_path)
    assert path.read_text() == before  # idempotent: passwords are never regenerated


def test_the_scram_verifier_is_what_postgresql_accepts() -> None:
    url = get_settings().warehouse_url
    verifier = scram_verifier("correct horse")
    assert verifier.startswith("SCRAM-SHA-256$4096:")
    assert "correct" not in verifier
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop role if exists opsdash_probe_login")
        conn.execute(f"create role opsdash_probe_login login password '{verifier}'")
    try:
        parts = urlsplit(url)
        probe = f"postgresql://opsdash_probe_login:correct%20horse@{parts.hostname}:{parts.port}/postgres"
        with psycopg.connect(probe) as conn:
            assert conn.execute("select current_user").fetchone() == ("opsdash_probe_login",)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(probe.replace("horse", "battery")).close()
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("drop role opsdash_probe_login")

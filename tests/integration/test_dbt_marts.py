"""The dbt project on real PostgreSQL: marts built from simulated data, risk score judged against
ground truth, bad source data (duplicates, late rows, deleted customers) counted once, an
incremental build equal to a full rebuild, and the TimescaleDB path parsing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from opsdash_core.dbt_env import dbt_env
from opsdash_core.settings import PROJECT_ROOT, get_settings
from orchestration.lib.ingest.loader import (
    Fetcher,
    hold_ingest_lock,
    ingest_table,
    source_fetcher,
)
from orchestration.lib.ingest.tables import TABLES, TableSpec
from tests.conftest import migrate_url

pytestmark = pytest.mark.integration

DBT_PROJECT = PROJECT_ROOT / "dbt_project"
SCALE, DAYS, SEED = 6_000, 90, 7

# Every incremental model and mart, with the key that orders its rows for comparison.
COMPARED = {
    "intermediate.int_sessions_deduplicated": "session_id",
    "intermediate.int_customers_aggregated": "customer_id, reference_date",
    "intermediate.int_tutor_hours_available": "tutor_id, day_of_week, hour_of_day",
    "intermediate.int_subject_hours_available": "subject_id, day_of_week, hour_of_day",
    "intermediate.int_tutor_sessions_daily": "tutor_id, session_date",
    "intermediate.int_demand_hourly": "subject_id, hour_at",
    "intermediate.int_supply_hourly": "subject_id, hour_at",
    "intermediate.int_kpis_daily": "kpi_date",
    "marts.customer_health": "customer_id",
    "marts.customer_health_history": "customer_id, snapshot_date",
    "marts.tutor_performance_daily": "tutor_id, performance_date",
    "marts.tutor_performance": "tutor_id",
    "marts.supply_demand_hourly": "subject_id, hour_at",
    "marts.supply_demand_daily": "subject_id, day_at",
    "marts.supply_demand_category_hourly": "subject_category, hour_at",
    "marts.ops_kpis_daily": "kpi_date",
}
# When a row was computed differs between the two builds by design.
RUN_COLUMNS = {"computed_at", "as_of_date"}


def _with_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def _admin(statement: str) -> None:
    with psycopg.connect(_with_db(get_settings().warehouse_url, "postgres"), autocommit=True) as c:
        c.execute(statement)


def dbt_command(
    warehouse_url: str, args: list[str], target: Path
) -> tuple[list[str], dict[str, str]]:
    """The dbt command line and environment for `args` against `warehouse_url`."""
    env = {
        **os.environ,
        **dbt_env(get_settings()),
        "OPSDASH_DBT_DBNAME": warehouse_url.rsplit("/", 1)[1],
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "DBT_USE_COLORS": "false",
    }
    command = [
        str(Path(sys.executable).parent / "dbt"),
        *args,
        "--profiles-dir",
        str(DBT_PROJECT),
        "--target-path",
        str(target / "target"),
        "--log-path",
        str(target / "logs"),
    ]
    return command, env


def run_dbt(warehouse_url: str, args: list[str], target: Path, *, check: bool = True) -> str:
    """Run dbt against `warehouse_url` with a private target path; returns stdout."""
    command, env = dbt_command(warehouse_url, args, target)
    done = subprocess.run(
        command, cwd=DBT_PROJECT, env=env, capture_output=True, text=True, check=False
    )
    if check:
        assert done.returncode == 0, done.stdout[-5000:]
    return done.stdout


def calls_fetcher(source_url: str, spec: TableSpec) -> Fetcher:
    """support.inbound_calls straight from the source database (same columns as the API)."""

    def fetch(since: datetime) -> Iterator[list[dict[str, Any]]]:
        query = sql.SQL(
            "select {} from support.inbound_calls where updated_at > %s order by updated_at, id"
        ).format(sql.SQL(", ").join(sql.Identifier(c) for c in spec.columns))
        with psycopg.connect(source_url) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, (since,))
            yield cur.fetchall()

    return fetch


def ingest_all(warehouse_url: str, source_url: str) -> None:
    for spec in TABLES:
        fetch = source_fetcher(source_url, spec) if spec.source else calls_fetcher(source_url, spec)
        ingest_table(warehouse_url, spec, fetch)


def rows(url: str, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def value(url: str, query: str, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    return row[0] if row else None


def table_contents(url: str, table: str, order_by: str) -> list[tuple[Any, ...]]:
    schema, name = table.split(".")
    columns = [
        r["column_name"]
        for r in rows(
            url,
            "select column_name from information_schema.columns"
            " where table_schema = %s and table_name = %s order by ordinal_position",
            (schema, name),
        )
        if r["column_name"] not in RUN_COLUMNS
    ]
    if not columns:  # materialized views are not in information_schema.columns
        columns = [
            r["attname"]
            for r in rows(
                url,
                "select attname from pg_attribute where attrelid = %s::regclass"
                " and attnum > 0 and not attisdropped order by attnum",
                (table,),
            )
            if r["attname"] not in RUN_COLUMNS
        ]
    query = sql.SQL("select {} from {} order by {}").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        sql.Identifier(schema, name),
        sql.SQL(order_by),
    )
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


@dataclass
class Marts:
    """A simulated marketplace ingested and built by dbt once for the module."""

    source_url: str
    warehouse_url: str
    work: Path
    as_of: str

    def dbt(self, *args: str, url: str | None = None) -> str:
        return run_dbt(url or self.warehouse_url, [*args, "--vars", self.vars], self.work)

    def dbt_process(self, *args: str) -> subprocess.Popen[str]:
        """`dbt <args>` started in the background (stdout and stderr together)."""
        command, env = dbt_command(self.warehouse_url, [*args, "--vars", self.vars], self.work)
        return subprocess.Popen(
            command,
            cwd=DBT_PROJECT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    @property
    def vars(self) -> str:
        return json.dumps({"as_of": self.as_of, "rollup_min_refresh_minutes": 0})


@pytest.fixture(scope="module")
def marts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Marts]:
    from simulator.generator import generate

    suffix = uuid.uuid4().hex[:8]
    source, warehouse = f"dbtsrc_{suffix}", f"dbtwh_{suffix}"
    base = get_settings().warehouse_url
    for name in (source, warehouse):
        _admin(f'create database "{name}"')
    try:
        source_url, warehouse_url = _with_db(base, source), _with_db(base, warehouse)
        generate(source_url, scale=SCALE, days=DAYS, seed=SEED, echo=lambda _m: None)
        migrate_url(warehouse_url)
        ingest_all(warehouse_url, source_url)
        # One reference time for every build in the module: windows end on the same day.
        as_of = datetime.now(UTC).replace(microsecond=0).isoformat()
        built = Marts(source_url, warehouse_url, tmp_path_factory.mktemp("dbt"), as_of)
        built.dbt("build")
        yield built
    finally:
        for name in (source, warehouse, f"{warehouse}_full"):
            _admin(f'drop database if exists "{name}" with (force)')


def test_every_mart_has_rows(marts: Marts) -> None:
    for table in COMPARED:
        assert value(marts.warehouse_url, f"select count(*) from {table}") > 0, table


def source_freshness(url: str, work: Path) -> dict[str, str]:
    """`dbt source freshness` on `url`: status per raw table that declares freshness."""
    run_dbt(url, ["source", "freshness"], work, check=False)
    results = json.loads((work / "target" / "sources.json").read_text())["results"]
    return {r["unique_id"].rsplit(".", 1)[1]: r["status"] for r in results}


def test_source_freshness_follows_ingestion(marts: Marts, tmp_path: Path) -> None:
    """Just ingested, every raw table with a freshness rule passes; a table whose last
    ingested change is 7 hours old errors (sessions: warn 2 h, error 6 h) and the others
    are unaffected."""
    statuses = source_freshness(marts.warehouse_url, tmp_path / "now")
    assert statuses == dict.fromkeys(
        ("customers", "session_requests", "sessions", "inbound_calls"), "pass"
    )

    stale_db = f"{marts.warehouse_url.rsplit('/', 1)[1]}_stale"
    _admin(f'create database "{stale_db}" template "{marts.warehouse_url.rsplit("/", 1)[1]}"')
    try:
        stale_url = _with_db(marts.warehouse_url, stale_db)
        with psycopg.connect(stale_url) as conn:
            conn.execute("update raw.sessions set _ingested_at = _ingested_at - interval '7 hours'")
        statuses = source_freshness(stale_url, tmp_path / "stale")
    finally:
        _admin(f'drop database if exists "{stale_db}" with (force)')
    assert statuses["sessions"] == "error"
    assert statuses["session_requests"] == "pass"


def test_risk_tiers_rank_churn(marts: Marts) -> None:
    """Against the simulator's ground truth: churn rises strictly from low to critical and
    the rule score separates churners (ROC-AUC >= 0.70)."""
    from sklearn.metrics import roc_auc_score

    scores = {
        r["customer_id"]: r
        for r in rows(marts.warehouse_url, "select * from marts.customer_health")
    }
    truth = {
        r["customer_id"]: r["churned"]
        for r in rows(marts.source_url, "select customer_id, churned from truth.customer_outcomes")
    }
    labels = [truth[c] for c in scores]
    auc = roc_auc_score(labels, [float(r["risk_score"]) for r in scores.values()])
    rates = []
    for tier in ("low", "medium", "high", "critical"):
        churned = [truth[c] for c, r in scores.items() if r["risk_tier"] == tier]
        assert churned, f"no customer in tier {tier}"
        rates.append(sum(churned) / len(churned))
    assert rates == sorted(rates), rates
    assert len(set(rates)) == 4, rates
    assert auc >= 0.70, auc


def _session_to_duplicate(url: str) -> dict[str, Any]:
    return rows(
        url,
        "select s.* from raw.sessions s join raw.customers c on c.id = s.customer_id"
        " where s.status = 'completed' and s.rating is not null and c.status = 'active'"
        " and c.deleted_at is null order by s.id limit 1",
    )[0]


def test_bad_data_counts_once_and_incremental_equals_full(marts: Marts) -> None:
    wh, src = marts.warehouse_url, marts.source_url
    now = datetime.now(UTC)

    # 1. Duplicate: the source rewrote a session's created_at, so raw holds two versions of
    #    one session id; the newer one (rating changed) must win and count once.
    original = _session_to_duplicate(wh)
    new_rating = 1 if original["rating"] != 1 else 2
    with psycopg.connect(wh) as conn:
        conn.execute(
            "insert into raw.sessions (id, customer_id, tutor_id, subject_id, session_request_id,"
            " scheduled_at, duration_minutes, status, cancelled_by, no_show_by, rating,"
            " is_first_session, created_at, updated_at)"
            " select id, customer_id, tutor_id, subject_id, session_request_id, scheduled_at,"
            " duration_minutes, status, cancelled_by, no_show_by, %s, is_first_session,"
            " created_at + interval '1 second', %s from raw.sessions"
            " where id = %s and created_at = %s",
            (new_rating, now, original["id"], original["created_at"]),
        )

    # 2. Late row: a session held 10 days ago reaches the source only now.
    late = rows(
        src,
        "select s.customer_id, s.tutor_id, s.subject_id from tutoring_sessions s"
        " join customers c on c.id = s.customer_id"
        " where c.status = 'active' and c.deleted_at is null order by s.id desc limit 1",
    )[0]
    late_at = (now - timedelta(days=10)).replace(minute=0, second=0, microsecond=0)
    with psycopg.connect(src) as conn:
        late_id = conn.execute(
            "insert into tutoring_sessions (customer_id, tutor_id, subject_id, scheduled_at,"
            " duration_minutes, status, rating, is_first_session, created_at, updated_at)"
            " values (%s, %s, %s, %s, 60, 'completed', 5, false, %s, %s) returning id",
            (
                late["customer_id"],
                late["tutor_id"],
                late["subject_id"],
                late_at,
                late_at - timedelta(days=2),
                now - timedelta(seconds=30),
            ),
        ).fetchone()[0]  # type: ignore[index]

    # 3. Deleted customer: soft-deleted in the source, with sessions and a score.
    deleted = value(
        wh,
        "select h.customer_id from marts.customer_health h"
        " where h.sessions_30d > 0 and h.customer_id <> %s order by h.customer_id limit 1",
        (late["customer_id"],),
    )
    with psycopg.connect(src) as conn:
        conn.execute(
            "update customers set deleted_at = %s, updated_at = %s where id = %s",
            (now - timedelta(seconds=20), now - timedelta(seconds=20), deleted),
        )

    ingest_all(wh, src)
    # 4. The same window ingested again (a retried ingestion run) changes nothing.
    with psycopg.connect(wh) as conn:
        conn.execute("update raw.watermarks set watermark = watermark - interval '1 hour'")
    ingest_all(wh, src)

    marts.dbt("build", "--exclude", "tag:heavy", "test_type:unit")

    # The deleted customer is gone from every customer count; nobody counts twice.
    assert (
        value(wh, "select count(*) from marts.customer_health where customer_id = %s", (deleted,))
        == 0
    )
    health = value(wh, "select count(*) from marts.customer_health")
    kpis_today = value(
        wh, "select active_customers from marts.ops_kpis_daily order by kpi_date desc limit 1"
    )
    assert kpis_today == health
    assert health == value(
        wh, "select count(*) from raw.customers where status = 'active' and deleted_at is null"
    )
    # Sessions: one per id, the newer version of the duplicate, the late one in its day.
    distinct_sessions = value(wh, "select count(distinct id) from raw.sessions")
    assert (
        value(wh, "select sum(sessions_scheduled) from intermediate.int_tutor_sessions_daily")
        == distinct_sessions
    )
    assert value(wh, "select count(*) from intermediate.int_sessions_deduplicated") == (
        distinct_sessions
    )
    assert (
        value(
            wh,
            "select rating from intermediate.int_sessions_deduplicated where session_id = %s",
            (original["id"],),
        )
        == new_rating
    )
    late_day = rows(
        wh,
        "select sessions_scheduled, sessions_completed from marts.tutor_performance_daily"
        " where tutor_id = %s and performance_date = %s",
        (late["tutor_id"], late_at.date()),
    )
    expected_day = value(
        wh,
        "select count(*) from intermediate.int_sessions_deduplicated"
        " where tutor_id = %s and session_date = %s",
        (late["tutor_id"], late_at.date()),
    )
    assert late_day
    assert late_day[0]["sessions_scheduled"] == expected_day
    assert (
        value(
            wh,
            "select count(*) from intermediate.int_sessions_deduplicated where session_id = %s",
            (late_id,),
        )
        == 1
    )

    # The incremental state equals a full rebuild of the same raw data (history kept).
    full_db = f"{wh.rsplit('/', 1)[1]}_full"
    _admin(f'create database "{full_db}" template "{wh.rsplit("/", 1)[1]}"')
    full_url = _with_db(wh, full_db)
    marts.dbt("build", "--full-refresh", "--exclude", "tag:heavy", url=full_url)
    for table, order_by in COMPARED.items():
        incremental = table_contents(wh, table, order_by)
        rebuilt = table_contents(full_url, table, order_by)
        assert incremental == rebuilt, f"{table}: incremental differs from a full rebuild"


def test_timescaledb_path_renders_and_parses(marts: Marts, tmp_path: Path) -> None:
    """With `timescaledb: assume` the project compiles, and every statement the TimescaleDB
    path would run (hypertables, compression, retention, continuous aggregates) is valid
    PostgreSQL syntax (checked by the server's parser, without TimescaleDB installed)."""
    args = ["--vars", json.dumps({"timescaledb": "assume"})]
    run_dbt(
        marts.warehouse_url, ["compile", "--select", "config.materialized:rollup", *args], tmp_path
    )
    compiled_dir = tmp_path / "target" / "compiled" / "opsdash" / "models" / "marts"
    compiled = {p.stem: p.read_text() for p in compiled_dir.rglob("*.sql")}
    assert "time_bucket(interval '1 day', hour_at)" in compiled["supply_demand_daily"]

    output = run_dbt(
        marts.warehouse_url, ["run-operation", "print_timescaledb_ddl", *args], tmp_path
    )
    blocks: dict[str, str] = {}
    current = None
    for line in output.splitlines():
        if line.startswith("-- model: "):
            current = line.removeprefix("-- model: ").strip()
            blocks[current] = ""
        elif current is not None and not line[:2].isdigit():
            blocks[current] += line + "\n"
    assert set(blocks) == {
        "int_tutor_sessions_daily",
        "int_demand_hourly",
        "int_supply_hourly",
        "customer_health_history",
        "tutor_performance_daily",
        "supply_demand_hourly",
        "supply_demand_daily",
        "supply_demand_category_hourly",
    }
    assert "add_retention_policy" in blocks["customer_health_history"]
    assert "add_compression_policy" in blocks["customer_health_history"]
    for name in ("supply_demand_daily", "supply_demand_category_hourly"):
        assert "timescaledb.continuous" in blocks[name]
        assert "add_continuous_aggregate_policy" in blocks[name]
    with psycopg.connect(marts.warehouse_url) as conn:
        for name, statements in blocks.items():
            body = "begin\n" + statements.replace("__MODEL_SQL__", compiled.get(name, "")) + "\nend"
            try:
                conn.execute(
                    sql.SQL(
                        "create function pg_temp.timescaledb_path() returns void"
                        " language plpgsql as {}"
                    ).format(sql.Literal(body))
                )
            except psycopg.errors.SyntaxError as exc:
                pytest.fail(f"{name}: {exc}")
            finally:
                conn.rollback()


def test_continuous_aggregate_refresh_is_a_no_op_without_timescaledb(marts: Marts) -> None:
    from opsdash_core.rollups import refresh_continuous_aggregates

    with psycopg.connect(marts.warehouse_url, autocommit=True) as conn:
        assert refresh_continuous_aggregates(conn) == []


def test_alert_rules_run_over_the_built_marts_without_a_flood(marts: Marts) -> None:
    """Every repository alert rule's SQL against the real marts (on a copy, so the module's
    warehouse stays as dbt built it): no rule fails or is skipped, the first evaluation raises
    at most one alert per rule, and a second one with unchanged data raises none."""
    from alerting.config import load_rules
    from alerting.engine import run_tick

    copy = f"{marts.warehouse_url.rsplit('/', 1)[1]}_alerts"
    _admin(f'create database "{copy}" template "{marts.warehouse_url.rsplit("/", 1)[1]}"')
    try:
        config = load_rules(override=False)
        now = datetime.now(UTC)
        with psycopg.connect(_with_db(marts.warehouse_url, copy)) as conn:
            first = run_tick(conn, config, now=now, publish=False)
            assert [o.describe() for o in first.errors] == []
            assert {o.rule: o.skipped_reason for o in first.outcomes if o.skipped_reason} == {}
            per_rule = conn.execute(
                "select rule, count(*) from app.alerts group by rule"
            ).fetchall()
            assert all(count == 1 for _rule, count in per_rule), per_rule
            critical = next(o for o in first.outcomes if o.rule == "customer_critical")
            assert critical.firing > 1
            assert critical.summary_id is not None
            again = run_tick(conn, config, now=now + timedelta(minutes=1), publish=False)
            assert again.errors == []
            assert sum(len(o.opened) for o in again.outcomes) == 0
    finally:
        _admin(f'drop database if exists "{copy}" with (force)')


def _advisory_waiters(url: str) -> int:
    return int(
        value(
            url,
            "select count(*) from pg_stat_activity where datname = current_database()"
            " and wait_event_type = 'Lock' and wait_event = 'advisory'",
        )
    )


def test_a_build_waits_for_the_ingestion_in_flight(marts: Marts) -> None:
    """A row whose ingestion transaction began before a build and commits while the build runs
    is stamped older than the build, so the next build would not see it as new: the build must
    wait for that transaction and read the row itself."""
    wh = marts.warehouse_url
    session_id = int(value(wh, "select max(id) from raw.sessions")) + 1_000_000
    with psycopg.connect(wh) as ingesting:
        hold_ingest_lock(ingesting)
        ingesting.execute(
            "insert into raw.sessions (id, customer_id, tutor_id, subject_id, session_request_id,"
            " scheduled_at, duration_minutes, status, cancelled_by, no_show_by, rating,"
            " is_first_session, created_at, updated_at)"
            " select %s, customer_id, tutor_id, subject_id, null, scheduled_at, duration_minutes,"
            " status, cancelled_by, no_show_by, rating, false, now(), now() from raw.sessions"
            " where id = (select max(id) from raw.sessions where status = 'completed')",
            (session_id,),
        )
        time.sleep(1.5)  # the build starts well after this transaction did
        build = marts.dbt_process("build", "--select", "int_sessions_deduplicated")
        try:
            deadline = time.monotonic() + 120
            while _advisory_waiters(wh) == 0:
                assert build.poll() is None, "the build did not wait for the ingestion"
                assert time.monotonic() < deadline, "the build never reached the ingestion lock"
                time.sleep(0.2)
            time.sleep(1.0)
            assert build.poll() is None, "the build went on while the ingestion was in flight"
        finally:
            ingesting.commit()
        output, _ = build.communicate(timeout=600)
    assert build.returncode == 0, output[-5000:]
    assert (
        value(
            wh,
            "select count(*) from intermediate.int_sessions_deduplicated where session_id = %s",
            (session_id,),
        )
        == 1
    )


def _view_oid(url: str, view: str) -> int | None:
    return value(url, "select to_regclass(%s)::oid::bigint", (view,))


def test_an_unchanged_view_is_left_alone_so_a_reader_never_holds_up_the_cycle(
    marts: Marts,
) -> None:
    """A view that a long query reads (the churn features, a dashboard) made each cycle's build
    wait for that query (recreating a view locks it exclusively). An unchanged view is not
    recreated; a missing one (dropped by a cascade) is."""
    wh, view = marts.warehouse_url, "staging.stg_marketplace__customers"
    before = _view_oid(wh, view)
    assert before is not None
    with psycopg.connect(wh) as reader:  # a reader holding the view for the whole build
        reader.execute(f"select count(*) from {view}")
        build = marts.dbt_process("run", "--select", "stg_marketplace__customers")
        try:
            out, _ = build.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            build.kill()
            pytest.fail("the build waited for the query reading the view")
        assert build.returncode == 0, out[-3000:]
    assert "SELECT 1" in out, out[-3000:]
    assert _view_oid(wh, view) == before  # not recreated
    with psycopg.connect(wh) as conn:  # as dbt's cascade drops a view that depends on another
        conn.execute(f"drop view {view}")
    assert _view_oid(wh, view) is None
    marts.dbt("run", "--select", "stg_marketplace__customers")
    assert _view_oid(wh, view) is not None
    assert value(wh, f"select count(*) from {view}") > 0

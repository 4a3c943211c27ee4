"""The dbt side of the TimescaleDB path on the test PostgreSQL, which has no TimescaleDB.

`dbt run-operation print_timescaledb_ddl --vars '{timescaledb: assume}'` renders, through the
same macros a build runs, every statement the path sends for each time-series and rollup
model. Here each statement is pinned with its arguments (the chunk/segmentby/orderby choices
included), and every part a plain server can execute is executed: the hypertable step against
recording stand-ins of the extension's functions and information views, the switch from
native partitions on a real partitioned table (its rows must survive), and the rollup's
"history pending" comment through the Python refresh that consumes it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from opsdash_core.dbt_env import dbt_env
from opsdash_core.rollups import refresh_continuous_aggregates
from opsdash_core.settings import PROJECT_ROOT, get_settings
from opsdash_core.timescale import RefreshWindow
from tests.integration.test_timescale_python import RecordingCalls, recorded, stub_database

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Layout:
    """What the TimescaleDB path makes of one time-series model."""

    relation: str
    time_column: str
    chunk: str
    segment_by: str
    order_by: str
    compress_after: str
    retention: str | None = None


# The choices, and why, are in the models' config (dbt_project.yml and the model files).
LAYOUTS = {
    "int_tutor_sessions_daily": Layout(
        "intermediate.int_tutor_sessions_daily", "session_date", "30 days", "",
        "session_date desc, tutor_id", "45 days",
    ),
    "tutor_performance_daily": Layout(
        "marts.tutor_performance_daily", "performance_date", "30 days", "",
        "performance_date desc, tutor_id", "45 days",
    ),
    "customer_health_history": Layout(
        "marts.customer_health_history", "snapshot_date", "7 days", "",
        "snapshot_date desc, customer_id", "7 days", "90 days",
    ),
    **{
        name: Layout(f"{schema}.{name}", "hour_at", "30 days", "subject_id", "hour_at desc", "45 days")
        for schema, name in (
            ("intermediate", "int_demand_hourly"),
            ("intermediate", "int_supply_hourly"),
            ("marts", "supply_demand_hourly"),
        )
    },
}  # fmt: skip
ROLLUPS = ("supply_demand_daily", "supply_demand_category_hourly")


def quoted(relation: str) -> str:
    return ".".join(f'"{part}"' for part in relation.split("."))


def flat(text: str) -> str:
    """Whitespace-insensitive form of SQL text."""
    return re.sub(r"\s+", " ", text).replace("( ", "(").replace(" )", ")").strip()


def expected_hypertable_step(layout: Layout) -> str:
    rel = quoted(layout.relation)
    schema, name = layout.relation.split(".")
    retention = (
        f"select add_retention_policy('{rel}', drop_after => interval '{layout.retention}',"
        " if_not_exists => true);"
        if layout.retention
        else ""
    )
    return flat(f"""
        -- migrate_data: dbt filled the table with CREATE TABLE AS before this hook runs
        select create_hypertable('{rel}', '{layout.time_column}',
            chunk_time_interval => interval '{layout.chunk}',
            migrate_data => true, if_not_exists => true);
        do $$ begin
            if not exists (select 1 from timescaledb_information.hypertables
                where hypertable_schema = '{schema}' and hypertable_name = '{name}'
                  and compression_enabled)
            then
                alter table {rel} set (timescaledb.compress,
                    timescaledb.compress_segmentby = '{layout.segment_by}',
                    timescaledb.compress_orderby = '{layout.order_by}');
            end if;
        end $$;
        select add_compression_policy('{rel}', compress_after => interval '{layout.compress_after}',
            if_not_exists => true);
        {retention}
    """)


@pytest.fixture(scope="module")
def ddl(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:
    """(model, step) -> the statements printed for it."""
    work, project = tmp_path_factory.mktemp("tsdbt"), PROJECT_ROOT / "dbt_project"
    vars_ = json.dumps({"timescaledb": "assume"})
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "run-operation", "print_timescaledb_ddl",
         "--vars", vars_, "--profiles-dir", str(project), "--target-path", str(work / "target"),
         "--log-path", str(work / "logs")],
        cwd=project,
        env={**os.environ, **dbt_env(get_settings()), "HTTPS_PROXY": "http://127.0.0.1:9",
             "DBT_USE_COLORS": "false"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-5000:]
    output = done.stdout
    blocks: dict[tuple[str, str], str] = {}
    model = step = ""
    for line in output.splitlines():
        if line.startswith("-- model: "):
            model = line.removeprefix("-- model: ").strip()
        elif line.startswith("-- step: "):
            step = line.removeprefix("-- step: ").strip()
            blocks[model, step] = ""
        elif step and not line[:2].isdigit():  # dbt's own log lines start with the time
            blocks[model, step] += line + "\n"
    return blocks


def test_every_statement_is_rendered_with_its_arguments(ddl: dict[tuple[str, str], str]) -> None:
    assert {model for model, _ in ddl} == set(LAYOUTS) | set(ROLLUPS)
    for model, layout in LAYOUTS.items():
        assert flat(ddl[model, "hypertable"]) == expected_hypertable_step(layout), model
        rel, old = quoted(layout.relation), quoted(layout.relation + "__partitioned")
        assert flat(ddl[model, "from native partitions, before the hypertable"]) == flat(f"""
            drop table if exists {old} cascade;
            alter table {rel} rename to "{layout.relation.split(".")[1]}__partitioned";
            create table {rel} (like {old} including defaults including constraints);
        """)
        assert flat(ddl[model, "from native partitions, after the hypertable"]) == flat(
            f"insert into {rel} select * from {old}; drop table {old} cascade;"
        )
    for model in ROLLUPS:
        rel = quoted(f"marts.{model}")
        assert flat(ddl[model, "continuous aggregate"]) == flat(f"""
            create materialized view {rel}
            with (timescaledb.continuous, timescaledb.materialized_only = false) as
            __MODEL_SQL__
            with no data;
            select add_continuous_aggregate_policy('{rel}',
                start_offset => interval '45 days', end_offset => interval '1 hour',
                schedule_interval => interval '15 minutes', if_not_exists => true);
        """)
        comment = re.sub(r"refreshed [^']+'", "refreshed T'", flat(ddl[model, "comment"]))
        assert comment == (
            f"comment on view {rel} is 'opsdash rollup, fingerprint __FINGERPRINT__,"
            " history pending, refreshed T';"
        )


def _create_model_tables(conn: psycopg.Connection) -> None:
    conn.execute("create schema intermediate; create schema marts")
    for layout in LAYOUTS.values():
        conn.execute(f"create table {layout.relation} ({layout.time_column} timestamptz)")


def test_hypertable_step_runs_against_the_extension_stand_ins(
    ddl: dict[tuple[str, str], str], scratch_db: Callable[[str], str]
) -> None:
    """Compression already on (a rerun): every call goes through with the named arguments
    TimescaleDB takes. Compression off (first build): the step reaches the ALTER TABLE, which
    only a server with the extension accepts."""
    url = stub_database(scratch_db)
    with psycopg.connect(url, autocommit=True) as conn:
        _create_model_tables(conn)
        for model, layout in LAYOUTS.items():
            schema, name = layout.relation.split(".")
            conn.execute(
                "insert into timescaledb_information.hypertables values (%s, %s, true)",
                (schema, name),
            )
            conn.execute(ddl[model, "hypertable"])
            calls = recorded(conn)
            conn.execute("truncate timescaledb_stub.calls")
            expected = [
                f"create_hypertable({layout.relation}, {layout.time_column},"
                f" chunk_time_interval => {layout.chunk}, if_not_exists => t, migrate_data => t)",
                f"add_compression_policy({layout.relation},"
                f" compress_after => {layout.compress_after}, if_not_exists => t)",
            ]
            if layout.retention:
                expected.append(
                    f"add_retention_policy({layout.relation},"
                    f" drop_after => {layout.retention}, if_not_exists => t)"
                )
            assert calls == expected, model

        conn.execute("update timescaledb_information.hypertables set compression_enabled = false")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="timescaledb"):
            conn.execute(ddl["customer_health_history", "hypertable"])


def test_switch_from_native_partitions_keeps_the_history(
    ddl: dict[tuple[str, str], str], scratch_db: Callable[[str], str]
) -> None:
    """customer_health_history cannot be rebuilt: switching a plain deployment must carry its
    past snapshots (in every partition, the DEFAULT one included) into the hypertable."""
    url = stub_database(scratch_db)
    model = "customer_health_history"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            create schema marts;
            create table marts.customer_health_history
                (customer_id bigint not null, snapshot_date date, risk_score numeric default 0)
                partition by range (snapshot_date);
            create table marts.customer_health_history__p20261101
                partition of marts.customer_health_history
                for values from ('2026-11-01') to ('2026-11-02');
            create table marts.customer_health_history__pdefault
                partition of marts.customer_health_history default;
            insert into marts.customer_health_history
            select c, d::date, c % 100 from generate_series(1, 50) as c,
                generate_series(date '2026-10-30', date '2026-11-02', interval '1 day') as d;
            create view marts.depends_on_history as select * from marts.customer_health_history;
            """
        )
        before = conn.execute(
            "select * from marts.customer_health_history order by 1, 2"
        ).fetchall()
        conn.execute("insert into timescaledb_information.hypertables values"
                     " ('marts', 'customer_health_history', true)")  # fmt: skip
        with conn.transaction():  # dbt runs the post-hook in the model's transaction
            conn.execute(ddl[model, "from native partitions, before the hypertable"])
            conn.execute(ddl[model, "hypertable"])
            conn.execute(ddl[model, "from native partitions, after the hypertable"])
        after = conn.execute("select * from marts.customer_health_history order by 1, 2").fetchall()
        kinds = conn.execute(
            "select c.relname, c.relkind::text from pg_class c join pg_namespace n"
            " on n.oid = c.relnamespace where n.nspname = 'marts' and c.relkind in ('r', 'p', 'v')"
        ).fetchall()
        calls = recorded(conn)
    assert len(before) == 200
    assert after == before
    assert kinds == [("customer_health_history", "r")]
    assert calls[0].startswith("create_hypertable(marts.customer_health_history, snapshot_date,")


def test_new_aggregate_history_is_refreshed_once(
    ddl: dict[tuple[str, str], str], scratch_db: Callable[[str], str]
) -> None:
    """The comment the rollup materialization writes on creation makes the pipeline's refresh
    cover the whole range once; the next refresh covers the recent window only."""
    url = scratch_db("tscomment")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema marts")
        for model in ROLLUPS:
            conn.execute(f"create view marts.{model} as select 1 as n")
            conn.execute(ddl[model, "comment"])
        views = [f"marts.{model}" for model in ROLLUPS]
        first, second = RecordingCalls(conn, views), RecordingCalls(conn, views)
        refresh_continuous_aggregates(conn, calls=first, timescale=True)
        refresh_continuous_aggregates(conn, calls=second, timescale=True)
    window = RefreshWindow(back=timedelta(days=3), ahead=timedelta(days=8))  # the defaults
    assert first.made[1:] == [("refresh", view, None) for view in views]
    assert second.made[1:] == [("refresh", view, window) for view in views]

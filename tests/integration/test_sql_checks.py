"""The blocking suites compiled to SQL (data_checks/sql_checks.py) give Great Expectations'
verdicts, expectation by expectation, on good and bad batches in real PostgreSQL; and the SQL
engine never imports GX."""

import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from data_checks import BY_NAME, LoadFacts, validate
from data_checks.result import CheckResult
from data_checks.sql_checks import compilable, validate_sql
from opsdash_core.settings import PROJECT_ROOT
from orchestration.defs.resources import WarehouseResource

pytestmark = pytest.mark.integration

SEED = (
    "insert into raw.tutors (id, status, created_at, updated_at)"
    " select g, 'active', %(t)s, %(t)s from generate_series(1, 5) g",
    "insert into raw.customers (id, status, created_at, updated_at)"
    " select g, 'active', %(t)s, %(t)s from generate_series(1, 10) g",
    "insert into raw.subjects (id, name, category, created_at, updated_at)"
    " values (1, 'Algebra', 'math', %(t)s, %(t)s)",
    "insert into raw.watermarks (table_name, watermark)"
    " values ('customers', %(wm)s), ('tutors', %(wm)s), ('subjects', %(wm)s)",
)
# raw.* keeps NOT NULL on a few contract-required columns; these tests drop it to load what a
# broken loader could write, so the not-null rules have something to find
NULLABLE = (
    "alter table raw.sessions alter column status drop not null",
    "alter table raw.session_requests alter column customer_id drop not null",
)


def session(i: int, now: datetime, **over: Any) -> dict[str, Any]:
    created = now - timedelta(hours=3)
    row = {
        "id": i,
        "customer_id": 1 + i % 10,
        "tutor_id": 1 + i % 5,
        "subject_id": 1,
        "session_request_id": None,
        "scheduled_at": now - timedelta(hours=1),
        "duration_minutes": 60,
        "status": "completed",
        "cancelled_by": None,
        "no_show_by": None,
        "rating": 4,
        "is_first_session": False,
        "created_at": created,
        "updated_at": created + timedelta(minutes=5),
    }
    return row | over


def request(i: int, now: datetime, **over: Any) -> dict[str, Any]:
    created = now - timedelta(hours=3)
    row = {
        "id": i,
        "customer_id": 1 + i % 10,
        "subject_id": 1,
        "requested_start_at": now + timedelta(days=1),
        "status": "pending",
        "tutoring_session_id": None,
        "created_at": created,
        "updated_at": created,
    }
    return row | over


def insert(conn: psycopg.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    query = sql.SQL("insert into {} ({}) values ({})").format(
        sql.Identifier("raw", table),
        sql.SQL(", ").join(map(sql.Identifier, cols)),
        sql.SQL(", ").join(sql.Placeholder() * len(cols)),
    )
    with conn.cursor() as cur:
        cur.executemany(query, [tuple(r[c] for c in cols) for r in rows])


@pytest.fixture
def wh(warehouse_url: str) -> str:
    with psycopg.connect(warehouse_url) as conn:
        now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        for statement in (*SEED, *NULLABLE):
            conn.execute(statement, {"t": now - timedelta(days=30), "wm": now - timedelta(hours=2)})
    return warehouse_url


Batch = Callable[[datetime], list[dict[str, Any]]]

SESSION_BATCHES: dict[str, Batch] = {
    "good": lambda now: [session(i, now) for i in range(1, 21)],
    "status outside the enum": lambda now: [session(1, now, status="done", rating=None)],
    "status null": lambda now: [session(1, now, status=None, rating=None)],
    "duration 0 and 999": lambda now: [
        session(1, now, duration_minutes=0),
        session(2, now, duration_minutes=999),
    ],
    "rating 7": lambda now: [session(1, now, rating=7)],
    "rated but cancelled": lambda now: [
        session(1, now, status="cancelled", cancelled_by="customer", rating=3)
    ],
    "cancelled_by outside the enum": lambda now: [
        session(1, now, status="cancelled", cancelled_by="admin", rating=None)
    ],
    "updated before created": lambda now: [session(1, now, updated_at=now - timedelta(days=1))],
    "created in the future": lambda now: [
        session(1, now, created_at=now + timedelta(hours=2), updated_at=now + timedelta(hours=2))
    ],
    "completed but scheduled in the future": lambda now: [
        session(1, now, scheduled_at=now + timedelta(days=2))
    ],
    "scheduled in the future, not completed": lambda now: [
        session(1, now, status="scheduled", rating=None, scheduled_at=now + timedelta(days=2))
    ],
    "unknown tutor": lambda now: [session(1, now, tutor_id=999)],
    "unknown customer, judged": lambda now: [session(1, now, customer_id=999)],
    "unknown customer, newer than the customers load": lambda now: [
        session(
            1,
            now,
            customer_id=999,
            created_at=now - timedelta(minutes=30),
            updated_at=now - timedelta(minutes=20),
            scheduled_at=now - timedelta(minutes=10),
        )
    ],
    "one id, two created_at": lambda now: [
        session(1, now),
        session(1, now, created_at=now - timedelta(hours=4), updated_at=now - timedelta(hours=4)),
    ],
    "id 0 and negative customer": lambda now: [session(0, now), session(2, now, customer_id=-1)],
    "many problems at once": lambda now: [
        session(1, now, status="done", tutor_id=999, duration_minutes=0),
        session(2, now, rating=0, updated_at=now - timedelta(days=9)),
        *[session(i, now) for i in range(3, 9)],
    ],
}

REQUEST_BATCHES: dict[str, Batch] = {
    "good": lambda now: [request(i, now) for i in range(1, 21)],
    "status outside the enum": lambda now: [request(1, now, status="lost")],
    "customer null": lambda now: [request(1, now, customer_id=None)],
    "unknown subject": lambda now: [request(1, now, subject_id=42)],
    "customer 0": lambda now: [request(1, now, customer_id=0)],
    "updated before created": lambda now: [request(1, now, updated_at=now - timedelta(days=1))],
}


def verdicts(result: CheckResult) -> dict[str, bool]:
    return {o.label: o.success for o in result.outcomes}


def both(url: str, suite_name: str, tmp_path: Path, **kw: Any) -> tuple[CheckResult, CheckResult]:
    suite = BY_NAME[suite_name]
    assert compilable(suite)
    gx = validate(url, suite, since=None, home=tmp_path, data_docs=False, **kw)
    compiled = validate_sql(url, suite, since=None, **kw)
    return gx, compiled


def assert_same(gx: CheckResult, compiled: CheckResult) -> None:
    assert verdicts(compiled) == verdicts(gx)
    assert compiled.success is gx.success
    assert compiled.window.rows == gx.window.rows
    for ours, theirs in zip(compiled.outcomes, gx.outcomes, strict=True):
        assert ours.expectation == theirs.expectation, ours.label
        if not ours.success:
            assert ours.sample, f"no sample rows for {ours.label}"


@pytest.mark.parametrize("case", list(SESSION_BATCHES))
def test_sessions_valid_batch_same_verdicts(wh: str, tmp_path: Path, case: str) -> None:
    with psycopg.connect(wh) as conn:
        now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        insert(conn, "sessions", SESSION_BATCHES[case](now))
    gx, compiled = both(wh, "raw_sessions__valid_batch", tmp_path)
    assert_same(gx, compiled)
    assert gx.success is (case == "good" or "newer than" in case or "not completed" in case)
    two_versions = "one id, two created_at" in case
    assert verdicts(gx)["id unique across loads (one created_at per id)"] is not two_versions


@pytest.mark.parametrize("case", list(REQUEST_BATCHES))
def test_requests_valid_batch_same_verdicts(wh: str, tmp_path: Path, case: str) -> None:
    with psycopg.connect(wh) as conn:
        now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        insert(conn, "session_requests", REQUEST_BATCHES[case](now))
    gx, compiled = both(wh, "raw_session_requests__valid_batch", tmp_path)
    assert_same(gx, compiled)
    assert gx.success is (case == "good")


@pytest.mark.parametrize(
    "drift",
    [
        "alter table raw.session_requests add column surprise text",
        "alter table raw.session_requests drop column tutoring_session_id",
        "alter table raw.session_requests alter column status type varchar(20)",
    ],
)
def test_schema_drift_same_verdicts(wh: str, tmp_path: Path, drift: str) -> None:
    with psycopg.connect(wh) as conn:
        now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        insert(conn, "session_requests", [request(i, now) for i in range(1, 4)])
        conn.execute(drift)
    gx, compiled = both(wh, "raw_session_requests__valid_batch", tmp_path)
    assert not gx.success
    assert verdicts(compiled) == verdicts(gx)


@pytest.mark.parametrize(("quarantined", "facts"), [(0, True), (2, True), (3, True), (3, False)])
def test_quarantine_rate_same_verdicts(
    wh: str, tmp_path: Path, quarantined: int, facts: bool
) -> None:
    with psycopg.connect(wh) as conn:
        for i in range(quarantined):
            conn.execute(
                "insert into raw.quarantine (table_name, source_key, reason, payload,"
                " payload_hash, run_id) values ('sessions', %s, 'bad', '{}', %s, 'run-1')",
                (str(i), str(i)),
            )
    load = LoadFacts("run-1", 100, quarantined) if facts else None
    gx, compiled = both(wh, "raw_sessions__quarantine_rate", tmp_path, facts=load)
    assert_same(gx, compiled)
    assert gx.success is (quarantined <= 2 or not facts)


def test_new_rows_window_is_shared_with_the_history(wh: str, tmp_path: Path) -> None:
    """Run by run (window from quality.check_runs) the SQL engine reads each batch once."""
    from data_checks import run_check

    suite = BY_NAME["raw_sessions__valid_batch"]
    with psycopg.connect(wh) as conn:
        now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        insert(conn, "sessions", [session(1, now, status="done", rating=None)])
    first = run_check(wh, suite, run_id="r1", engine="sql", home=tmp_path).result
    with psycopg.connect(wh) as conn:
        insert(conn, "sessions", [session(2, now)])
    second = run_check(wh, suite, run_id="r2", engine="sql", home=tmp_path).result
    third = run_check(wh, suite, run_id="r3", engine="sql", home=tmp_path).result
    assert (first.success, first.window.rows) == (False, 1)
    assert (second.success, second.window.rows) == (True, 1)
    assert third.skipped == ("no new rows since the last check",)
    with psycopg.connect(wh) as conn:
        recorded = conn.execute(
            "select run_id, success from quality.check_runs order by id"
        ).fetchall()
    assert recorded == [("r1", False), ("r2", True), ("r3", True)]


def test_sql_engine_does_not_import_great_expectations(wh: str) -> None:
    code = (
        "import sys; from data_checks import BY_NAME, run_check;"
        f"run_check({wh!r}, BY_NAME['raw_sessions__valid_batch'], engine='sql');"
        f"run_check({wh!r}, BY_NAME['raw_sessions__quarantine_rate'], engine='sql');"
        "print('great_expectations' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    )
    assert out.stdout.strip().splitlines()[-1] == "False"


SESSIONS_KEY = dg.AssetKey(["raw", "sessions"])
BLOCKED = dg.AssetKey(["marts", "after_sessions"])


def _fake_sessions(rows: Batch) -> dg.AssetsDefinition:
    @dg.asset(key=SESSIONS_KEY)
    def _load(warehouse: WarehouseResource) -> dg.MaterializeResult:
        with warehouse.connect() as conn:
            now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
            batch = rows(now)
            insert(conn, "sessions", batch)
        return dg.MaterializeResult(metadata={"rows_read": len(batch), "rows_quarantined": 0})

    return _load


@dg.asset(key=BLOCKED, deps=[SESSIONS_KEY])
def after_sessions() -> None:
    """Stands in for the marts the cycle builds after the checks."""


@pytest.mark.parametrize("case", ["good", "status outside the enum"])
def test_a_failed_sql_check_stops_the_marts_in_the_same_run(wh: str, case: str) -> None:
    """The cycle's engine tag: the blocking checks run as SQL, and a failure skips downstream."""
    from orchestration.defs.quality.checks import ENGINE_TAG, QUALITY_CHECKS

    checks = [c for c in QUALITY_CHECKS if any(k.asset_key == SESSIONS_KEY for k in c.check_keys)]
    blocking = [c for c in checks if all(s.blocking for s in c.check_specs)]
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [_fake_sessions(SESSION_BATCHES[case]), after_sessions, *blocking],
            resources={"warehouse": WarehouseResource(url=wh)},
            instance=instance,
            tags={ENGINE_TAG: "sql"},
            raise_on_error=False,
        )
    verdicts = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    built = {m.asset_key for m in result.get_asset_materialization_events() if m.asset_key}
    assert verdicts == {"valid_batch": case == "good", "quarantine_rate": True}
    assert (BLOCKED in built) is (case == "good")
    with psycopg.connect(wh) as conn:
        docs = conn.execute("select data_docs from quality.check_runs").fetchall()
    assert docs == [(None,), (None,)]  # the SQL engine ran (GX would render a page)

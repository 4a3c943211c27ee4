"""The Great Expectations suites against real PostgreSQL: good and bad rows inserted by hand,
and exactly which expectations fail; a recorded failure reaches people through the alert
engine's check rules (the only path that notifies)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from alerting.config import load_rules
from alerting.engine import TickReport, run_tick
from data_checks import BY_NAME, LoadFacts, run_check, validate
from data_checks.contract_rules import column_types
from data_checks.result import CheckResult
from data_checks.suites import RAW_TABLES
from opsdash_core.contracts import InboundCall

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@dataclass
class Wh:
    url: str
    home: Path
    now: datetime


def insert(url: str, table: str, rows: list[dict[str, Any]]) -> None:
    """One transaction = one load: every row gets the same _ingested_at."""
    cols = list(rows[0])
    query = sql.SQL("insert into {} ({}) values ({})").format(
        sql.Identifier(*table.split(".")),
        sql.SQL(", ").join(sql.Identifier(c) for c in cols),
        sql.SQL(", ").join(sql.Placeholder() * len(cols)),
    )
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(query, [tuple(r[c] for c in cols) for r in rows])


def fetch(url: str, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def audit(now: datetime, age: timedelta = 30 * DAY) -> dict[str, Any]:
    return {"created_at": now - age, "updated_at": now - age}


def session(i: int, now: datetime, **over: Any) -> dict[str, Any]:
    row = {
        "id": i,
        "customer_id": 1 + i % 10,
        "tutor_id": 1 + i % 5,
        "subject_id": 1,
        "session_request_id": None,
        "scheduled_at": now - DAY,
        "duration_minutes": 60,
        "status": "completed",
        "cancelled_by": None,
        "no_show_by": None,
        "rating": 4,
        "is_first_session": False,
        "created_at": now - 2 * DAY,
        "updated_at": now - HOUR,
    }
    row.update(over)
    return row


def seed_dimensions(url: str, now: datetime) -> None:
    insert(
        url,
        "raw.customers",
        [
            {"id": i, "status": "active", "grade_level": 8, "goal_progress_pct": 40, **audit(now)}
            for i in range(1, 11)
        ],
    )
    insert(
        url,
        "raw.tutors",
        [
            {"id": i, "status": "active", "hourly_rate_cents": 3500, **audit(now)}
            for i in range(1, 6)
        ],
    )
    insert(
        url,
        "raw.subjects",
        [
            {"id": 1, "name": "Algebra", "category": "math", **audit(now)},
            {"id": 2, "name": "Biology", "category": "science", **audit(now)},
        ],
    )
    insert(
        url,
        "raw.watermarks",
        [{"table_name": t, "watermark": now} for t in ("customers", "tutors", "subjects")],
    )


@pytest.fixture
def wh(warehouse_url: str, tmp_path: Path) -> Wh:
    with psycopg.connect(warehouse_url) as conn:
        now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    seed_dimensions(warehouse_url, now)
    return Wh(warehouse_url, tmp_path / "home", now)


def failed(result: CheckResult) -> set[str]:
    return {o.label for o in result.failures}


def outcome(result: CheckResult, label: str) -> Any:
    return next(o for o in result.outcomes if o.label == label)


def check(wh: Wh, suite: str, **kw: Any) -> CheckResult:
    return validate(wh.url, BY_NAME[suite], home=wh.home, data_docs=False, **kw)


def evaluate(url: str, rule: str, now: datetime) -> TickReport:
    """One evaluation of a repository alert rule, as the alert sensor's minute tick runs it."""
    config = load_rules(override=False)
    with psycopg.connect(url) as conn:
        return run_tick(conn, config, rules=[config.rule(rule)], now=now, publish=False)


def test_clean_rows_pass_every_raw_suite_and_match_the_migrated_schema(wh: Wh) -> None:
    now = wh.now
    insert(wh.url, "raw.tutor_subjects", [{"id": 1, "tutor_id": 1, "subject_id": 1, **audit(now)}])
    insert(
        wh.url,
        "raw.tutor_availabilities",
        [{"id": 1, "tutor_id": 2, "day_of_week": 0, "start_hour": 15, "end_hour": 19} | audit(now)],
    )
    insert(
        wh.url,
        "raw.session_requests",
        [
            {
                "id": 1,
                "customer_id": 3,
                "subject_id": 2,
                "requested_start_at": now + DAY,
                "status": "pending",
                "tutoring_session_id": None,
                **audit(now, HOUR),
            }
        ],
    )
    insert(wh.url, "raw.sessions", [session(i, now) for i in range(1, 21)])
    insert(
        wh.url,
        "raw.inbound_calls",
        [
            {
                "id": 1,
                "customer_id": 4,
                "reason_code": "billing",
                "channel": "phone",
                "duration_seconds": 300,
                "resolved": True,
                "called_at": now - 2 * HOUR,
                **audit(now, HOUR),
            }
        ],
    )
    for table in RAW_TABLES:
        result = check(wh, f"raw_{table}__valid_batch")
        assert result.success, (table, [(o.label, o.observed, o.error) for o in result.failures])
        assert not result.skipped
        assert result.window.rows
        assert len(result.outcomes) == len(BY_NAME[f"raw_{table}__valid_batch"].specs)


def test_bad_sessions_fail_exactly_the_expectations_they_break(wh: Wh) -> None:
    now = wh.now
    good = [session(i, now) for i in range(1, 31)]
    bad = [
        session(101, now, rating=7),
        session(102, now, tutor_id=999),
        session(103, now, status="exploded", rating=None),
        session(104, now, duration_minutes=0),
        session(105, now, status="cancelled", cancelled_by="customer", rating=3),
        session(106, now, scheduled_at=now + DAY),
        session(107, now, created_at=now + DAY, updated_at=now + DAY),
        session(108, now, status="cancelled", cancelled_by="robot", rating=None),
    ]
    insert(wh.url, "raw.sessions", good + bad)
    result = check(wh, "raw_sessions__valid_batch")
    assert not result.success
    assert failed(result) == {
        "rating in [1, 5]",
        "tutor_id references raw.tutors.id",
        "status in {scheduled, completed, cancelled, no_show}",
        "duration_minutes in [1, 480]",
        "only completed sessions are rated",
        "scheduled_at not in the future",
        "created_at not in the future",
        "updated_at not in the future",
        "cancelled_by in {customer, tutor}",
    }
    rating = outcome(result, "rating in [1, 5]")
    assert rating.unexpected_count == 1
    assert rating.observed["partial_unexpected_list"] == [7]
    assert [r["id"] for r in rating.sample] == [101]
    assert rating.sample[0]["rating"] == 7
    tutors = outcome(result, "tutor_id references raw.tutors.id")
    assert tutors.observed == 1
    assert [(r["id"], r["tutor_id"]) for r in tutors.sample] == [(102, 999)]


def test_each_run_reads_only_rows_loaded_since_the_previous_one(wh: Wh) -> None:
    now = wh.now
    suite = BY_NAME["raw_sessions__valid_batch"]
    insert(wh.url, "raw.sessions", [session(i, now) for i in range(1, 11)])
    first = run_check(wh.url, suite, run_id="r1", home=wh.home, data_docs=False).result
    assert first.success
    assert first.window.rows == 10

    # A bad batch: an unknown tutor, and an id already loaded with another created_at.
    insert(
        wh.url,
        "raw.sessions",
        [session(11, now, tutor_id=999), session(5, now, created_at=now - 3 * DAY)],
    )
    bad = run_check(wh.url, suite, run_id="r2", home=wh.home, data_docs=False).result
    assert bad.window.rows == 2
    assert failed(bad) == {
        "tutor_id references raw.tutors.id",
        "id unique across loads (one created_at per id)",
    }

    # Nothing new: nothing to read.
    idle = run_check(wh.url, suite, run_id="r3", home=wh.home, data_docs=False).result
    assert idle.success
    assert idle.skipped == ("no new rows since the last check",)

    # Good data flows again: the next batch is judged on its own and passes.
    insert(wh.url, "raw.sessions", [session(i, now) for i in range(20, 25)])
    good = run_check(wh.url, suite, run_id="r4", home=wh.home, data_docs=False).result
    assert good.success
    assert good.window.rows == 5
    assert good.window.since == bad.window.until


def test_a_customer_is_unknown_only_once_the_customers_load_has_caught_up(wh: Wh) -> None:
    now = wh.now
    with psycopg.connect(wh.url) as conn:
        conn.execute(
            "update raw.watermarks set watermark = %s where table_name = 'customers'",
            (now - DAY,),
        )
    insert(
        wh.url,
        "raw.sessions",
        [
            session(1, now, customer_id=50, created_at=now - 2 * DAY),  # should have been loaded
            session(2, now, customer_id=51, created_at=now - HOUR),  # may not be loaded yet
        ],
    )
    result = check(wh, "raw_sessions__valid_batch")
    assert failed(result) == {"customer_id references raw.customers.id (once loaded)"}
    refs = outcome(result, "customer_id references raw.customers.id (once loaded)")
    assert refs.observed == 1
    assert [r["id"] for r in refs.sample] == [1]


def test_quarantine_rate_counts_the_loads_own_quarantined_rows(wh: Wh) -> None:
    rows = [
        {
            "table_name": "sessions",
            "source_key": str(i),
            "reason": "rating: Input should be less than or equal to 5",
            "payload": '{"rating": 7}',
            "payload_hash": f"h{i}",
            "run_id": "load-1",
        }
        for i in range(5)
    ]
    rows.append({**rows[0], "run_id": "load-0", "payload_hash": "older"})
    rows.append({**rows[0], "table_name": "customers", "payload_hash": "other-table"})
    insert(wh.url, "raw.quarantine", rows)

    too_many = check(wh, "raw_sessions__quarantine_rate", facts=LoadFacts("load-1", rows_read=100))
    assert failed(too_many) == {"rows quarantined by the load <= max(2, 1% of rows read)"}
    (o,) = too_many.outcomes
    assert o.observed == {"quarantined": 5, "rows_read": 100, "rate": 0.05}
    assert o.details["max_value"] == 2
    assert len(o.sample) == 5
    assert "less than or equal to 5" in o.sample[0]["reason"]
    assert o.sample[0]["payload"] == {"rating": 7}

    big_load = check(wh, "raw_sessions__quarantine_rate", facts=LoadFacts("load-1", rows_read=1000))
    assert big_load.success

    nothing = check(wh, "raw_sessions__quarantine_rate")
    assert nothing.success
    assert nothing.outcomes == ()


def _history(now: datetime, recent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Eight days before the last 24 h: 100 sessions a day, 80% completed rated 5."""
    rows = []
    for day in range(1, 9):
        for j in range(100):
            at = now - day * DAY - timedelta(hours=2, minutes=j)
            status = "completed" if j % 5 else "cancelled"
            rows.append(
                session(
                    day * 1000 + j,
                    now,
                    status=status,
                    rating=5 if status == "completed" else None,
                    cancelled_by=None if status == "completed" else "customer",
                    created_at=at,
                    updated_at=at,
                )
            )
    return rows + recent


def _recent(now: datetime, n: int, completed_share: float, rating: int) -> list[dict[str, Any]]:
    rows = []
    for j in range(n):
        at = now - timedelta(minutes=2 * j + 1)
        done = j < n * completed_share
        rows.append(
            session(
                50_000 + j,
                now,
                status="completed" if done else "cancelled",
                rating=rating if done else None,
                cancelled_by=None if done else "tutor",
                created_at=at,
                updated_at=at,
            )
        )
    return rows


def test_trends_pass_when_the_last_day_looks_like_the_week_before(wh: Wh) -> None:
    insert(wh.url, "raw.sessions", _history(wh.now, _recent(wh.now, 100, 0.8, 5)))
    result = check(wh, "raw_sessions__trends")
    assert result.success, [(o.label, o.observed) for o in result.failures]
    assert not result.skipped
    volume = next(o for o in result.outcomes if o.expectation.endswith("row_count_to_be_between"))
    assert volume.observed == 100
    assert volume.details["trailing_daily_avg"] == pytest.approx(100, rel=0.05)


def test_volume_spike_rating_drop_and_status_shift_fail_their_own_expectations(wh: Wh) -> None:
    insert(wh.url, "raw.sessions", _history(wh.now, _recent(wh.now, 400, 0.2, 2)))
    result = check(wh, "raw_sessions__trends")
    assert failed(result) == {
        "rows with created_at in the last 24 h within 0.5x-2.0x the trailing 7-day daily average",
        "mean rating of the last 24 h within +-0.4 of the trailing mean",
        "mix of status in the last 24 h close to the trailing mix (KL < 0.15)",
    }
    assert (
        outcome(
            result,
            "rows with created_at in the last 24 h within 0.5x-2.0x the trailing 7-day daily average",
        ).observed
        == 400
    )


def test_stale_table_fails_freshness_and_short_history_is_skipped(wh: Wh) -> None:
    now = wh.now
    insert(
        wh.url,
        "raw.inbound_calls",
        [
            {
                "id": 1,
                "customer_id": 4,
                "reason_code": "billing",
                "channel": "fax",
                "duration_seconds": 300,
                "resolved": True,
                "called_at": now - 2 * DAY,
                **audit(now, 2 * DAY),
            }
        ],
    )
    result = check(wh, "raw_inbound_calls__trends")
    assert failed(result) == {
        "newest updated_at within 6 h of now",
        "channel in {phone, chat, email}",
    }
    assert not result.blocking_failure  # warn severity
    assert len(result.skipped) == 2  # volume and reason-code mix: no history to compare with


def call(i: int, now: datetime, **over: Any) -> dict[str, Any]:
    row = {
        "id": i,
        "customer_id": 4,
        "reason_code": "billing",
        "channel": "phone",
        "duration_seconds": 300,
        "resolved": True,
        "called_at": now - 2 * HOUR,
        **audit(now, HOUR),
    }
    row.update(over)
    return row


def test_rules_read_from_the_contract_fail_in_the_warehouse_too(wh: Wh) -> None:
    """What only the contract declares (a minimum length, a reference id above zero) is
    checked on the rows that reached raw.*, e.g. rows written there by hand."""
    insert(
        wh.url,
        "raw.subjects",
        [{"id": 3, "name": "", "category": "math", **audit(wh.now)}],
    )
    insert(wh.url, "raw.inbound_calls", [call(1, wh.now), call(2, wh.now, customer_id=0)])
    assert failed(check(wh, "raw_subjects__valid_batch")) == {"name at least 1 character"}
    assert failed(check(wh, "raw_inbound_calls__valid_batch")) == {
        "customer_id in [1, +inf]",
        "customer_id references raw.customers.id (once loaded)",
    }


def test_a_missing_table_is_a_failed_check_not_a_crash(wh: Wh) -> None:
    with psycopg.connect(wh.url) as conn:
        conn.execute("alter table raw.tutor_subjects rename to tutor_subjects_later")
    result = check(wh, "raw_tutor_subjects__valid_batch")
    assert not result.success
    (o,) = result.outcomes
    assert o.error
    assert "raw.tutor_subjects" in o.error


def test_a_blocking_failure_is_stored_and_the_engine_raises_one_alert_naming_its_reason(
    wh: Wh,
) -> None:
    insert(wh.url, "raw.sessions", [session(1, wh.now), session(2, wh.now, tutor_id=999)])
    run = run_check(
        wh.url, BY_NAME["raw_sessions__valid_batch"], run_id="dagster-run-1", home=wh.home
    )
    assert not run.result.success

    runs = fetch(wh.url, "select * from quality.check_runs")
    assert len(runs) == 1
    assert runs[0]["id"] == run.check_run_id
    assert (runs[0]["asset_key"], runs[0]["check_name"], runs[0]["severity"]) == (
        "raw/sessions",
        "valid_batch",
        "error",
    )
    assert (runs[0]["success"], runs[0]["failed"], runs[0]["rows_checked"]) == (False, 1, 2)
    assert runs[0]["run_id"] == "dagster-run-1"
    assert runs[0]["window_end"] is not None
    results = fetch(
        wh.url,
        "select * from quality.check_results where check_run_id = %s and not success",
        (run.check_run_id,),
    )
    assert [(r["label"], r["observed_value"]) for r in results] == [
        ("tutor_id references raw.tutors.id", 1)
    ]
    assert results[0]["sample"][0]["tutor_id"] == 999
    assert results[0]["run_id"] == "dagster-run-1"
    # The check itself sends nothing: the alert engine is the one path to people.
    assert fetch(wh.url, "select id from app.notification_outbox") == []
    assert fetch(wh.url, "select id from app.alerts") == []

    now = datetime.now(UTC)
    tick = evaluate(wh.url, "check_failed", now)
    (alert,) = fetch(wh.url, "select * from app.alerts")
    assert (alert["rule"], alert["severity"], alert["status"]) == (
        "check_failed",
        "critical",
        "open",
    )
    expectations = runs[0]["expectations"]
    assert alert["title"] == (
        f"Blocking check valid_batch failed on raw/sessions (1 of {expectations} expectations):"
        " tutor_id references raw.tutors.id (observed 1)"
    )
    assert alert["details"]["data_docs"] == run.result.data_docs
    (failure,) = alert["details"]["failures"]
    assert failure["sample"][0]["tutor_id"] == 999
    # Notified in the same evaluation (group_wait 0s): critical goes to email and Slack.
    outbox = fetch(wh.url, "select * from app.notification_outbox order by id")
    assert [r["id"] for r in outbox] == tick.dispatch.notification_ids
    assert [(r["channel"], r["alert_ids"]) for r in outbox] == [
        ("email", [alert["id"]]),
        ("slack", [alert["id"]]),
    ]
    assert alert["title"] in outbox[0]["subject"]
    assert "tutor_id references raw.tutors.id (observed 1)" in outbox[0]["body"]
    assert "tutor_id references raw.tutors.id" in str(outbox[1]["payload"]["blocks"])

    # The next evaluation sees the same failure: the same alert, nothing sent again.
    again = evaluate(wh.url, "check_failed", now + timedelta(minutes=1))
    assert again.dispatch.notification_ids == []
    assert [(r["id"], r["occurrences"]) for r in fetch(wh.url, "select * from app.alerts")] == [
        (alert["id"], 2)
    ]

    page = run.result.data_docs
    assert page
    assert page.startswith("file://")
    assert Path(page.removeprefix("file://")).is_file()
    assert (wh.home / "data_docs" / "index.html").is_file()


def test_a_failing_warning_check_raises_one_warning_alert_while_it_keeps_failing(wh: Wh) -> None:
    suite = BY_NAME["raw_customers__trends"]  # freshness: seeded customers are 30 days old
    now = datetime.now(UTC)
    first = run_check(wh.url, suite, run_id="a", home=wh.home, data_docs=False)
    tick = evaluate(wh.url, "check_warning", now)
    again = run_check(wh.url, suite, run_id="b", home=wh.home, data_docs=False)
    later = evaluate(wh.url, "check_warning", now + timedelta(minutes=1))
    assert not first.result.success
    assert not again.result.success
    alerts = fetch(wh.url, "select rule, severity, title, occurrences from app.alerts")
    assert [(a["rule"], a["severity"], a["occurrences"]) for a in alerts] == [
        ("check_warning", "warning", 2)
    ]
    assert alerts[0]["title"].startswith("Check trends failed on raw/customers")
    # A warning is routed to Slack only, once; the still-failing check adds an occurrence.
    outbox = fetch(wh.url, "select channel from app.notification_outbox")
    assert [r["channel"] for r in outbox] == ["slack"]
    assert len(tick.dispatch.notification_ids) == 1
    assert later.dispatch.notification_ids == []
    # ... and a blocking-check rule does not see it.
    assert evaluate(wh.url, "check_failed", now).outcomes[0].firing == 0


def test_a_column_the_contract_declares_but_the_table_lacks_fails_with_the_reason(
    wh: Wh,
) -> None:
    with psycopg.connect(wh.url) as conn:
        conn.execute("alter table raw.inbound_calls drop column duration_seconds")
    row = call(1, wh.now)
    del row["duration_seconds"]
    insert(wh.url, "raw.inbound_calls", [row])
    result = check(wh, "raw_inbound_calls__valid_batch")
    missing = outcome(result, "duration_seconds in [0, +inf]")
    assert not missing.success
    assert missing.error
    assert "duration_seconds" in missing.error
    assert {
        "duration_seconds in [0, +inf]",
        "duration_seconds is INTEGER",
        "columns are exactly " + ", ".join(column_types(InboundCall)),
    } <= failed(result)

"""The pipeline rule kinds' SQL over a migrated warehouse with hand-made rows (the mart kinds run
over dbt-built marts in test_dbt_marts.py, which shares its build)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from psycopg.types.json import Jsonb

from alerting.config import load_rules
from alerting.engine import fetch_firing
from opsdash_core.db import connect

pytestmark = pytest.mark.integration


def test_pipeline_kinds_fire_on_their_tables(warehouse_url: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    config = load_rules(override=False)
    with connect(warehouse_url) as conn:
        for rule in ("check_failed", "watermark_stuck", "outbox_given_up", "support_surge"):
            assert fetch_firing(conn, config.rule(rule), now) == {}, rule
        conn.execute(
            "insert into quality.check_runs (id, check_name, asset_key, suite, severity, success,"
            " expectations, failed, checked_at) values"
            " (101, 'sessions_valid', 'raw/sessions', 's', 'error', false, 5, 2, %(t)s),"
            " (102, 'calls_trend', 'raw/inbound_calls', 's', 'warn', false, 5, 1, %(t)s)",
            {"t": now - timedelta(minutes=5)},
        )
        conn.execute(
            "insert into quality.check_results (check_run_id, check_name, asset_key, expectation,"
            " label, success, severity, observed_value, sample, error) values"
            " (101, 'sessions_valid', 'raw/sessions', 'e', 'tutor_id references raw.tutors.id',"
            "  false, 'error', '1', %(rows)s, null),"
            " (101, 'sessions_valid', 'raw/sessions', 'e', 'columns are exactly id, tutor_id',"
            "  false, 'error', null, '[]', 'column rating is missing'),"
            " (101, 'sessions_valid', 'raw/sessions', 'e', 'id is not null', true, 'error', '0',"
            "  '[]', null)",
            {"rows": Jsonb([{"id": i, "tutor_id": 999} for i in range(101, 106)])},
        )
        conn.execute(
            "insert into raw.watermarks (table_name, watermark, updated_at)"
            " values ('sessions', %(t)s, %(now)s), ('customers', %(t)s, %(now)s),"
            " ('tutors', %(recent)s, %(now)s)",
            {"t": now - timedelta(hours=2), "now": now, "recent": now - timedelta(minutes=5)},
        )
        # Every cycle writes updated_at: the watermark itself is what must not have moved.
        # sessions: a row quarantined 110 min after the newest loaded one (stuck); customers:
        # a bad row met 10 min after its watermark (a bad row among good ones); tutors: loading.
        conn.execute(
            "insert into raw.quarantine (table_name, source_key, reason, payload, payload_hash,"
            " quarantined_at) values ('sessions', '1', 'bad status', %(p)s, 'h1', %(t)s),"
            " ('customers', '2', 'bad email', %(p)s, 'h2', %(early)s),"
            " ('tutors', '3', 'bad rate', %(p)s, 'h3', %(t)s)",
            {
                "p": Jsonb({}),
                "t": now - timedelta(minutes=10),
                "early": now - timedelta(minutes=110),
            },
        )
        conn.execute(
            "insert into app.notification_outbox (channel, subject, body, status, given_up_at)"
            " values ('email', 's', 'b', 'given_up', %(t)s)",
            {"t": now},
        )
        conn.execute(
            "insert into raw.inbound_calls (id, customer_id, reason_code, called_at, created_at,"
            " updated_at) select i, i, 'billing', %(t)s, %(t)s, %(t)s"
            " from generate_series(1, 12) as i",
            {"t": now - timedelta(minutes=20)},
        )
        failed = fetch_firing(conn, config.rule("check_failed"), now)
        assert list(failed) == [
            "raw/sessions/sessions_valid"
        ]  # the warn-level check is not blocking
        blocking = failed["raw/sessions/sessions_valid"]
        # The table, the check and why: each failed expectation with what was observed.
        assert blocking.title == (
            "Blocking check sessions_valid failed on raw/sessions (2 of 5 expectations):"
            " columns are exactly id, tutor_id (error: column rating is missing);"
            " tutor_id references raw.tutors.id (observed 1)"
        )
        bad_rows = [f["sample"] for f in blocking.details["failures"] if f["observed"] == 1]
        assert bad_rows == [[{"id": i, "tutor_id": 999} for i in (101, 102, 103)]]
        warning = fetch_firing(conn, config.rule("check_warning"), now)
        assert list(warning) == ["raw/inbound_calls/calls_trend"]
        assert warning["raw/inbound_calls/calls_trend"].title == (
            "Check calls_trend failed on raw/inbound_calls (1 of 5 expectations)"
        )
        stuck = fetch_firing(conn, config.rule("watermark_stuck"), now)
        assert list(stuck) == ["sessions"]
        assert stuck["sessions"].details["quarantined_rows"] == 1
        assert list(fetch_firing(conn, config.rule("outbox_given_up"), now)) == [
            "notification_outbox"
        ]
        surge = fetch_firing(conn, config.rule("support_surge"), now)
        assert surge["support_calls"].details == {"calls": 12, "usual": 0.0}
        # The same calls a day later are the baseline of that hour, not a surge.
        assert fetch_firing(conn, config.rule("support_surge"), now + timedelta(days=1)) == {}

        conn.execute(
            "insert into quality.check_runs (check_name, asset_key, suite, severity, success,"
            " expectations, failed, checked_at)"
            " values ('sessions_valid', 'raw/sessions', 's', 'error', true, 5, 0, %(t)s)",
            {"t": now - timedelta(minutes=1)},
        )
        assert fetch_firing(conn, config.rule("check_failed"), now) == {}
        conn.rollback()


def test_demand_surge_and_no_show_streak_read_the_raw_tables(warehouse_url: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    config = load_rules(override=False)
    session = (
        "insert into raw.sessions (id, customer_id, tutor_id, subject_id, scheduled_at,"
        " duration_minutes, status, no_show_by, is_first_session, created_at, updated_at)"
        " values (%(id)s, 1, %(tutor)s, 1, %(at)s, 60, %(status)s, %(by)s, false, %(at)s, %(at)s)"
    )
    with connect(warehouse_url) as conn:
        conn.execute(
            "insert into raw.session_requests (id, customer_id, subject_id, requested_start_at,"
            " status, created_at, updated_at) select i, i, 3, %(t)s, 'pending', %(t)s, %(t)s"
            " from generate_series(1, 10) as i",
            {"t": now - timedelta(minutes=30)},
        )
        for i, (tutor, status, by) in enumerate(
            [(5, "no_show", "tutor")] * 3
            + [(5, "completed", None)]
            + [(6, "no_show", "tutor")]
            + [(6, "completed", None)] * 9,
            start=1,
        ):
            at = now - timedelta(hours=i)
            conn.execute(session, {"id": i, "tutor": tutor, "at": at, "status": status, "by": by})
        surge = fetch_firing(conn, config.rule("demand_surge"), now)
        assert list(surge) == ["3"]
        assert surge["3"].details == {"requests": 10, "usual": 0.0}
        assert fetch_firing(conn, config.rule("demand_surge"), now + timedelta(hours=2)) == {}
        streak = fetch_firing(conn, config.rule("tutor_no_show_streak"), now)
        assert list(streak) == ["5"]
        assert streak["5"].title == "Tutor 5 missed 3 of 4 sessions in 72 h"
        conn.rollback()

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
            "insert into quality.check_runs (check_name, asset_key, suite, severity, success,"
            " expectations, failed, checked_at) values"
            " ('sessions_valid', 'raw/sessions', 's', 'error', false, 5, 2, %(t)s),"
            " ('calls_trend', 'raw/inbound_calls', 's', 'warn', false, 5, 1, %(t)s)",
            {"t": now - timedelta(minutes=5)},
        )
        conn.execute(
            "insert into raw.watermarks (table_name, watermark, updated_at)"
            " values ('sessions', %(t)s, %(t)s), ('customers', %(t)s, %(now)s)",
            {"t": now - timedelta(hours=2), "now": now},
        )
        conn.execute(
            "insert into raw.quarantine (table_name, source_key, reason, payload, payload_hash,"
            " quarantined_at) values ('sessions', '1', 'bad status', %(p)s, 'h1', %(t)s)",
            {"p": Jsonb({}), "t": now - timedelta(minutes=10)},
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
        assert "2 of 5 expectations" in failed["raw/sessions/sessions_valid"].title
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

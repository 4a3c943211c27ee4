"""The alert-latency bench on a reused stack: which entities it must not inject on, read from a
real migrated warehouse (live alerts, and the rules' baseline and quiet keys)."""

from __future__ import annotations

import pytest
from psycopg.types.json import Jsonb

from bench.bench_alert_latency import busy_entities, ids
from opsdash_core.db import connect

pytestmark = pytest.mark.integration


def test_live_baselined_and_quiet_entities_are_busy(warehouse_url: str) -> None:
    with connect(warehouse_url) as conn:
        conn.execute(
            "insert into app.alerts (rule, entity_type, entity_id, severity, title, dedupe_key,"
            " status, is_summary) values"
            " ('demand_surge', 'subject', 3, 'warning', 'surge', 'demand_surge:3', 'open', false),"
            " ('demand_surge', 'subject', 4, 'warning', 'gone', 'demand_surge:4', 'resolved',"
            "  false),"
            " ('support_surge', 'support', null, 'critical', 'calls', 'support_surge:support_calls',"
            "  'acknowledged', false)"
        )
        conn.execute(
            "insert into app.alert_rule_state (rule, state) values"
            " ('tutor_no_show_streak', %s), ('customer_critical', %s)",
            (
                Jsonb({"baseline_keys": ["15"], "quiet_keys": ["17"], "active_keys": ["19"]}),
                Jsonb({"baseline_keys": ["99"]}),  # not a rule the bench injects for
            ),
        )
    busy = busy_entities(warehouse_url)
    assert busy == {
        "demand_surge": {"3"},
        "tutor_no_show_streak": {"15", "17", "19"},
        "support_surge": {"support_calls"},
    }
    assert ids(busy["tutor_no_show_streak"]) == [15, 17, 19]
    assert ids(busy["support_surge"]) == []

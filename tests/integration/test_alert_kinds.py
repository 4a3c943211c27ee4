"""The rule kinds' SQL over a migrated warehouse with hand-made rows: the pipeline kinds, and
each mart and model kind firing on the branch of its condition (the mart kinds also run over
dbt-built marts in test_dbt_marts.py, which shares its build)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from psycopg import Connection
from psycopg.types.json import Jsonb

from alerting.config import load_rules
from alerting.engine import fetch_firing, run_tick
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
            " quarantined_at) values ('sessions', '1', 'bad status', %(bad_time)s, 'h1', %(t)s),"
            " ('customers', '2', 'bad email', %(p)s, 'h2', %(early)s),"
            " ('tutors', '3', 'bad rate', %(p)s, 'h3', %(t)s)",
            {
                "p": Jsonb({}),
                # a payload whose own time is unreadable counts by when it was quarantined
                "bad_time": Jsonb({"updated_at": "2026-02-30 25:61"}),
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


# The columns the mart rule kinds read (dbt builds the real marts; test_dbt_marts.py runs the
# kinds over those). Hand-made rows make each branch of a condition fire or not on purpose.
MARTS_DDL = """
create schema if not exists marts;
create table marts.customer_health (
    customer_id bigint primary key,
    risk_score double precision not null,
    risk_tier text not null,
    risk_score_change_7d double precision,
    top_risk_component text,
    days_since_last_session integer,
    sessions_30d integer,
    avg_rating_30d numeric(3, 2),
    inbound_calls_30d integer,
    computed_at timestamptz not null default now()
);
create table marts.risk_tiers_daily (
    snapshot_date date primary key,
    low_customers bigint not null,
    medium_customers bigint not null,
    high_customers bigint not null,
    critical_customers bigint not null
);
create table marts.tutor_performance (
    tutor_id bigint primary key,
    sessions_scheduled_30d integer not null,
    tutor_no_show_rate_30d double precision,
    avg_rating_30d numeric(3, 2),
    first_session_success_rate_30d double precision,
    first_sessions_resolved_30d integer not null default 0,
    as_of_date date not null default current_date
);
create table marts.demand_supply_gaps_hourly (
    subject_id bigint not null,
    subject_name text,
    hour_at timestamptz not null,
    forecast_requested_sessions double precision not null,
    available_tutor_hours double precision not null,
    primary key (subject_id, hour_at)
);
"""


def health(conn: Connection, *rows: tuple[int, float, str, float | None]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "insert into marts.customer_health"
            " (customer_id, risk_score, risk_tier, risk_score_change_7d) values (%s, %s, %s, %s)"
            " on conflict (customer_id) do update set risk_tier = excluded.risk_tier",
            rows,
        )


def test_customer_and_tutor_mart_kinds_fire_on_each_branch(warehouse_url: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    config = load_rules(override=False)
    with connect(warehouse_url) as conn:
        conn.execute(MARTS_DDL)
        health(
            conn,
            (1, 48.0, "medium", 25.0),  # rose 25 points in 7 days: at risk though not high
            (2, 40.0, "medium", 15.0),  # rose, but less than 20
            (3, 61.0, "high", None),  # entered high (no 7-day history yet)
            (4, 35.0, "low", 20.0),  # exactly +20
            (5, 92.0, "critical", 30.0),  # critical: customer_critical's, not this rule's
        )
        at_risk = fetch_firing(conn, config.rule("customer_at_risk"), now)
        assert sorted(at_risk) == ["1", "3", "4"]
        assert at_risk["1"].title == "Customer 1 risk rose 25 points in 7 days"
        assert at_risk["3"].title == "Customer 3 is at high churn risk"
        assert at_risk["1"].details["risk_score_change_7d"] == 25.0
        assert list(fetch_firing(conn, config.rule("customer_critical"), now)) == ["5"]

        conn.execute(
            "insert into marts.tutor_performance (tutor_id, sessions_scheduled_30d,"
            " tutor_no_show_rate_30d, avg_rating_30d, first_session_success_rate_30d,"
            " first_sessions_resolved_30d) values"
            " (1, 10, 0.20, 4.6, 0.9, 4),"  # no-shows
            " (2, 12, 0.00, 3.2, 0.9, 4),"  # rating
            " (3, 9, 0.05, 4.4, 0.4, 5),"  # first sessions rarely lead anywhere
            " (4, 9, 0.05, 4.4, 0.2, 2),"  # too few first sessions to judge
            " (5, 5, 0.60, 2.0, 0.0, 4),"  # too few sessions to judge at all
            " (6, 20, 0.05, 4.8, 0.8, 6)"  # fine
        )
        tutors = fetch_firing(conn, config.rule("tutor_underperforming"), now)
        assert sorted(tutors) == ["1", "2", "3"]
        assert tutors["1"].title == "Tutor 1 underperforming: no-show rate 20%"
        assert tutors["2"].title == "Tutor 2 underperforming: rating 3.2"
        assert tutors["3"].title == "Tutor 3 underperforming: first-session success 40%"

        spike = config.rule("at_risk_spike")
        # 20 high customers on every one of the last 14 days (a day without counts takes the
        # newest counted day before it)...
        conn.execute(
            "insert into marts.risk_tiers_daily values (%(day)s, 80, 0, 20, 0)",
            {"day": (now - timedelta(days=14)).date()},
        )
        conn.execute("delete from marts.customer_health")
        # ...and 26 today: 1.3 x the usual, but only 6 more (min_increase 10): no spike.
        health(conn, *[(i, 70.0, "high", None) for i in range(1, 27)])
        assert fetch_firing(conn, spike, now) == {}
        health(conn, *[(i, 90.0, "critical", None) for i in range(27, 41)])  # 40 today
        fired = fetch_firing(conn, spike, now)
        assert list(fired) == ["population"]
        assert fired["population"].title == "At-risk customers spiked: 40 against a usual 20"
        assert fired["population"].details["baseline_days"] == 14
        # Fewer days of history than min_baseline_days: no baseline, no spike.
        conn.execute(
            "update marts.risk_tiers_daily set snapshot_date = %s",
            ((now - timedelta(days=2)).date(),),
        )
        assert fetch_firing(conn, spike, now) == {}
        conn.rollback()


def test_supply_gap_fires_within_its_horizon_after_holding_for_10_minutes(
    warehouse_url: str,
) -> None:
    t0 = datetime.now(UTC).replace(second=0, microsecond=0)
    hour = t0.replace(minute=0)
    config = load_rules(override=False)
    rule = config.rule("supply_gap")
    with connect(warehouse_url) as conn:
        conn.execute(MARTS_DDL)
        conn.commit()
        # The first evaluation takes the baseline: nothing short yet.
        assert run_tick(conn, config, rules=[rule], now=t0, publish=False).outcomes[0].firing == 0
        conn.execute(
            "insert into marts.demand_supply_gaps_hourly (subject_id, subject_name, hour_at,"
            " forecast_requested_sessions, available_tutor_hours) values"
            " (7, 'Algebra', %(h1)s, 10, 5), (7, 'Algebra', %(h2)s, 12, 5),"
            " (7, 'Algebra', %(h3)s, 3, 5),"  # covered that hour
            " (8, 'Biology', %(h1)s, 5, 4.5),"  # short, but under 1.2 x
            " (9, 'Chemistry', %(late)s, 10, 1)",  # past the 24-hour horizon
            {
                "h1": hour + timedelta(hours=2),
                "h2": hour + timedelta(hours=3),
                "h3": hour + timedelta(hours=4),
                "late": hour + timedelta(hours=30),
            },
        )
        conn.commit()
        gap = fetch_firing(conn, rule, t0)
        assert list(gap) == ["7"]
        assert gap["7"].title == "Demand above supply for Algebra in 2 of the next 24 hours"
        assert gap["7"].details["max_forecast_sessions"] == 12.0

        # `for: 10m`: pending while it holds for less, one alert once it held that long.
        held = [
            run_tick(conn, config, rules=[rule], now=t0 + timedelta(minutes=m), publish=False)
            for m in (1, 6, 10.5, 11)
        ]
        assert [(o.firing, o.pending, len(o.opened)) for r in held for o in r.outcomes] == [
            (1, 1, 0),
            (1, 1, 0),
            (1, 1, 0),
            (1, 0, 1),
        ]
        (alert,) = conn.execute(
            "select rule, entity_id, status, created_at from app.alerts"
        ).fetchall()
        assert alert == ("supply_gap", 7, "open", t0 + timedelta(minutes=11))


def test_churn_model_kinds_fire_on_the_monitoring_tables(warehouse_url: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.date()
    config = load_rules(override=False)
    with connect(warehouse_url) as conn:
        # The monitoring asset ran at psi_threshold 0.25: `b` (PSI 0.22) is not drifted there,
        # and the rule follows the asset's verdict (one threshold, not two).
        conn.execute(
            "insert into ml.churn_drift (monitored_date, model_name, model_version, feature,"
            " psi, is_drifted, threshold) values"
            " (%(today)s, 'churn', '3', 'days_since_last_session', 0.41, true, 0.25),"
            " (%(today)s, 'churn', '3', 'sessions_30d', 0.22, false, 0.25),"
            " (%(before)s, 'churn', '3', 'inbound_calls_30d', 0.90, true, 0.25)",  # not latest
            {"today": today, "before": today - timedelta(days=1)},
        )
        drift = fetch_firing(conn, config.rule("churn_drift"), now)
        assert list(drift) == ["churn:days_since_last_session"]
        found = drift["churn:days_since_last_session"]
        assert found.title == "Churn feature days_since_last_session drifted (PSI 0.41)"
        assert found.details["threshold"] == 0.25
        # The monitoring stopped three days ago: the rule does not keep alerting on old days.
        assert fetch_firing(conn, config.rule("churn_drift"), now + timedelta(days=3)) == {}

        conn.execute(
            "insert into ml.churn_accuracy (scored_date, model_name, model_version, customers,"
            " churned, roc_auc, recall, precision, threshold) values"
            " (%(d2)s, 'churn', '3', 400, 40, 0.71, 0.6, 0.3, 0.5),"
            " (%(d1)s, 'churn', '3', 380, 41, 0.58, 0.4, 0.2, 0.5),"  # the latest that counts
            " (%(d0)s, 'churn', '3', 12, 1, 0.95, 1.0, 0.5, 0.5),"  # too few customers
            " (%(d1)s, 'churn_b', '1', 380, 41, 0.80, 0.7, 0.4, 0.5)",
            {
                "d2": today - timedelta(days=62),
                "d1": today - timedelta(days=61),
                "d0": today - timedelta(days=60),
            },
        )
        accuracy = fetch_firing(conn, config.rule("churn_accuracy"), now)
        assert list(accuracy) == ["churn"]
        assert accuracy["churn"].title == "Churn model churn v3 accuracy dropped: ROC AUC 0.58"
        assert accuracy["churn"].details["customers"] == 380
        conn.rollback()

"""Recommendations against a real PostgreSQL scratch warehouse (migrations applied) and the test
Redis: generation from hand-made mart rows, dedup, self-clearing, the re-enrollment cap, the
volume bound, snooze and expiry on a simulated clock, and people's actions with their role check,
history, audit rows and live events. The marts' columns are the ones the generation reads; the
real models are built by dbt (the effectiveness mart is built by dbt below)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerting.recommendations import (
    RecommendationPolicy,
    RecommendationStateError,
    accept,
    dismiss,
    effectiveness,
    generate_recommendations,
    list_recommendations,
    recommendation_history,
    snooze,
)
from opsdash_core import events
from opsdash_core.accounts import PermissionDeniedError, User
from opsdash_core.db import connect
from opsdash_core.dbt_env import dbt_env
from opsdash_core.settings import PROJECT_ROOT, get_settings, reset_settings

pytestmark = pytest.mark.integration

MARTS_DDL = """
create schema if not exists marts;
create table marts.customer_health (
    customer_id bigint primary key,
    risk_score numeric not null,
    risk_tier text not null,
    top_risk_component text,
    days_since_last_session integer,
    sessions_30d bigint,
    sessions_prev_30d bigint,
    avg_rating_30d numeric,
    inbound_calls_30d bigint,
    cancellation_requests_30d bigint,
    tutor_switches_90d bigint,
    goal_progress_pct numeric,
    tenure_days integer
);
create table marts.tutor_performance (
    tutor_id bigint primary key,
    success_score numeric,
    sessions_scheduled_30d bigint,
    is_underperforming boolean not null,
    underperforming_reason text
);
create table marts.demand_supply_gaps_hourly (
    subject_id bigint not null,
    subject_name text,
    hour_at timestamptz not null,
    hours_ahead integer not null,
    forecast_requested_sessions double precision not null,
    available_tutor_hours double precision not null,
    forecast_supply_gap double precision not null,
    is_gap_expected boolean not null
);
"""

HEALTH_SQL = """
insert into marts.customer_health (customer_id, risk_score, risk_tier, top_risk_component,
    days_since_last_session, sessions_30d, sessions_prev_30d, inbound_calls_30d,
    cancellation_requests_30d, tutor_switches_90d, tenure_days)
values (%s, %s, %s, 'recency', %s, %s, %s, 0, 0, 0, 200)
on conflict (customer_id) do update
set risk_score = excluded.risk_score, risk_tier = excluded.risk_tier
"""

SCORE_SQL = """
insert into ml.churn_scores
    (customer_id, scored_at, churn_probability, top_factors, model_name, model_version)
values (%s, %s, %s, %s, 'churn_logreg', '1')
"""

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
OPERATOR = User(id=1, username="olga", role="operator")
VIEWER = User(id=2, username="victor", role="viewer")


def factor(feature: str, value: float, reason: str, action: str | None) -> dict[str, Any]:
    return {
        "feature": feature,
        "value": value,
        "shap": 0.8,
        "direction": "raises",
        "reason": reason,
        "action": action,
    }


@pytest.fixture
def wh(warehouse_url: str) -> str:
    with connect(warehouse_url) as conn:
        conn.execute(MARTS_DDL)
    return warehouse_url


def run(conn: psycopg.Connection, sql: str, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else []


def at_risk_customer(url: str, customer_id: int = 101, tier: str = "critical") -> None:
    """A customer at risk with a churn score whose top factor is 23 days without a session."""
    with connect(url) as conn:
        conn.execute(HEALTH_SQL, (customer_id, 80, tier, 23, 2, 4))
        conn.execute(
            SCORE_SQL,
            (
                customer_id,
                NOW - timedelta(hours=2),
                0.72,
                Jsonb(
                    [
                        factor(
                            "recency_days",
                            23,
                            "no session in 23 days",
                            "Call to re-engage and book the next session",
                        ),
                        factor(
                            "support_calls_30d",
                            3,
                            "3 support calls in the last 30 days",
                            "Customer success follows up on their support contacts",
                        ),
                        {**factor("rating_last", 5, "last rating 5.0", None), "shap": -0.3}
                        | {"direction": "lowers"},
                    ]
                ),
            ),
        )


def set_tier(url: str, customer_id: int, tier: str) -> None:
    with connect(url) as conn:
        conn.execute(
            "update marts.customer_health set risk_tier = %s where customer_id = %s",
            (tier, customer_id),
        )


def generate(url: str, now: datetime = NOW, **policy: Any) -> Any:
    with connect(url) as conn:
        return generate_recommendations(conn, now=now, policy=RecommendationPolicy(**policy))


def test_generation_opens_plain_word_recommendations_once_and_clears_them(wh: str) -> None:
    at_risk_customer(wh, 101)
    with connect(wh) as conn:
        conn.execute(HEALTH_SQL, (102, 10, "low", 2, 4, 4))  # low risk: nothing to do
        conn.execute(
            "insert into marts.tutor_performance values (7, 44.0, 12, true, %s),"
            " (8, 80.0, 20, false, null)",
            ("first-session success 20% < 30%",),
        )
        conn.execute(
            "insert into marts.demand_supply_gaps_hourly values"
            " (3, 'Algebra', %s, 5, 9.0, 4.0, 5.0, true),"
            " (3, 'Algebra', %s, 6, 8.0, 4.0, 4.0, true),"
            " (4, 'Chemistry', %s, 5, 2.0, 4.0, -2.0, false)",
            (NOW + timedelta(hours=5), NOW + timedelta(hours=6), NOW + timedelta(hours=5)),
        )
        # a live alert on the customer: the recommendation points at it
        alert_id = run(
            conn,
            "insert into app.alerts (rule, entity_type, entity_id, severity, title, dedupe_key)"
            " values ('customer_risk', 'customer', 101, 'critical', 'at risk', 'cr:101')"
            " returning id",
        )[0]["id"]
    before = events.latest_id()

    first = generate(wh)

    with connect(wh) as conn:
        recs = {(r["entity_type"], r["rec_type"]): r for r in list_recommendations(conn)}
        assert set(recs) == {
            ("customer", "check_in_call"),
            ("customer", "support_follow_up"),
            ("tutor", "coaching_session"),
            ("subject", "open_slots"),
        }
        call = recs[("customer", "check_in_call")]
        assert call["entity_id"] == 101
        assert call["reason"].startswith("no session in 23 days (critical risk, 72% churn")
        assert call["action"] == "Call to re-engage and book the next session"
        assert call["status"] == "active"
        assert call["due_at"] == NOW + timedelta(days=1)
        assert call["expires_at"] == NOW + timedelta(days=14)
        # churn probability x (1 + sessions in the last 60 days)
        assert call["priority"] == pytest.approx(0.72 * 7)
        assert call["source_alert_id"] == alert_id
        coaching = recs[("tutor", "coaching_session")]
        assert coaching["reason"].startswith("first-session success 20% < 30% (12 sessions")
        supply = recs[("subject", "open_slots")]
        assert supply["entity_id"] == 3
        assert (
            "Algebra: 17 sessions forecast against 8 tutor-hours available - 9 short"
            in (supply["reason"])
        )
        assert supply["expires_at"] == NOW + timedelta(hours=7)
        assert [r["to_status"] for r in recommendation_history(conn, call["id"])] == ["active"]
    created = [e for e in events.read_since(before) if e.type == "recommendation_created"]
    assert sorted(e.data["id"] for e in created) == sorted(first.created)

    # Re-running over the same data opens nothing new.
    again = generate(wh, NOW + timedelta(hours=1))
    assert again.created == []
    with connect(wh) as conn:
        assert run(conn, "select count(*) as n from app.recommendations")[0]["n"] == 4

    # The customer's risk drops: both customer recommendations clear themselves.
    set_tier(wh, 101, "medium")
    cleared = generate(wh, NOW + timedelta(hours=2))
    with connect(wh) as conn:
        statuses = {
            r["rec_type"]: r["status"]
            for r in run(conn, "select rec_type, status from app.recommendations")
        }
        history = recommendation_history(conn, call["id"])
    assert len(cleared.cleared) == 2
    assert statuses == {
        "check_in_call": "cleared",
        "support_follow_up": "cleared",
        "coaching_session": "active",
        "open_slots": "active",
    }
    assert [(h["from_status"], h["to_status"], h["actor"]) for h in history] == [
        (None, "active", "system"),
        ("active", "cleared", "system"),
    ]


GOAL_SQL = """
insert into marts.customer_health (customer_id, risk_score, risk_tier, top_risk_component,
    days_since_last_session, sessions_30d, sessions_prev_30d, inbound_calls_30d,
    cancellation_requests_30d, tutor_switches_90d, goal_progress_pct, tenure_days)
values (%s, %s, %s, %s, 3, 4, 4, 0, 0, 0, %s, %s)
"""


def test_goal_review_is_recommended_while_its_trigger_holds(wh: str) -> None:
    """Goal review: a customer at risk mostly for little goal progress, and one the churn model
    ranks at risk for being new; a customer with the same progress but low risk gets none."""
    with connect(wh) as conn:
        conn.execute(GOAL_SQL, (301, 66, "high", "goal_progress", 15, 400))
        conn.execute(GOAL_SQL, (302, 20, "low", "goal_progress", 15, 400))
        conn.execute(GOAL_SQL, (303, 85, "critical", "recency", 70, 12))
        conn.execute(
            SCORE_SQL,
            (
                303,
                NOW - timedelta(hours=1),
                0.64,
                Jsonb([factor("customer_age_days", 12, "customer for 12 days", None)]),
            ),
        )
    generate(wh)
    with connect(wh) as conn:
        goals = {
            r["entity_id"]: r for r in list_recommendations(conn) if r["rec_type"] == "goal_review"
        }
    assert sorted(goals) == [301, 303]
    assert goals[301]["reason"].startswith("only 15% of their goal reached (high risk, score 66")
    assert goals[301]["action"] == "Review the customer's goal and study plan with them"
    assert goals[301]["due_at"] == NOW + timedelta(days=3)
    assert goals[303]["reason"].startswith("customer for 12 days (critical risk, 64% churn")
    assert goals[303]["due_at"] == NOW + timedelta(days=1)

    set_tier(wh, 301, "medium")  # the trigger cleared: the recommendation closes itself
    generate(wh, NOW + timedelta(hours=1))
    with connect(wh) as conn:
        statuses = {
            r["entity_id"]: r["status"]
            for r in run(
                conn,
                "select entity_id, status from app.recommendations where rec_type = 'goal_review'",
            )
        }
    assert statuses == {301: "cleared", 303: "active"}


def test_an_entity_is_not_enrolled_more_often_than_the_cap(wh: str) -> None:
    """Cap 2 per 30 days: the trigger comes and goes three times, two recommendations open."""
    at_risk_customer(wh, 101)
    opened = []
    for day in range(3):
        set_tier(wh, 101, "high")
        summary = generate(wh, NOW + timedelta(days=day), max_enrollments=2)
        opened.append(len(summary.created))
        set_tier(wh, 101, "low")
        generate(wh, NOW + timedelta(days=day, hours=1), max_enrollments=2)
    assert opened == [2, 2, 0]  # check-in call + support follow-up, twice, then capped
    # A month later the period has passed and the customer may be enrolled again.
    set_tier(wh, 101, "high")
    assert len(generate(wh, NOW + timedelta(days=31), max_enrollments=2).created) == 2


def test_volume_is_bounded_per_type_highest_priority_first(wh: str) -> None:
    for customer_id in range(201, 206):
        at_risk_customer(wh, customer_id)
    with connect(wh) as conn:  # more sessions at stake -> higher priority
        conn.execute("update marts.customer_health set sessions_30d = customer_id - 200")
    summary = generate(wh, max_open_per_type=2)
    with connect(wh) as conn:
        calls = list_recommendations(conn, entity_type="customer")
    assert summary.over_limit == 6  # 3 customers x 2 types
    by_type: dict[str, list[int]] = {}
    for r in calls:
        by_type.setdefault(r["rec_type"], []).append(r["entity_id"])
    assert by_type == {"check_in_call": [205, 204], "support_follow_up": [205, 204]}


def test_people_act_with_their_role_and_leave_history_audit_and_events(wh: str) -> None:
    at_risk_customer(wh, 101)
    generate(wh)
    with connect(wh) as conn:
        call, follow_up = sorted(list_recommendations(conn), key=lambda r: r["rec_type"])
    with connect(wh) as conn, pytest.raises(PermissionDeniedError):
        accept(conn, call["id"], VIEWER, "trying")
    before = events.latest_id()
    with connect(wh) as conn:
        accepted = accept(conn, call["id"], OPERATOR, " called, booked Tuesday ", now=NOW)
    assert (accepted["status"], accepted["acted_by"], accepted["comment"]) == (
        "accepted",
        "olga",
        "called, booked Tuesday",
    )
    updated = [e for e in events.read_since(before) if e.type == "recommendation_updated"]
    assert [(e.data["id"], e.data["status"], e.data["actor"]) for e in updated] == [
        (call["id"], "accepted", "olga")
    ]
    with connect(wh) as conn:
        with pytest.raises(RecommendationStateError):
            dismiss(conn, call["id"], OPERATOR)
        snoozed = snooze(conn, follow_up["id"], OPERATOR, NOW + timedelta(days=2), now=NOW)
        assert snoozed["status"] == "snoozed"
        audit = run(conn, "select username, action, details from app.audit_log order by id")
        history = recommendation_history(conn, call["id"])
    assert [(a["username"], a["action"]) for a in audit] == [
        ("olga", "recommendation.accepted"),
        ("olga", "recommendation.snoozed"),
    ]
    assert audit[0]["details"]["recommendation_id"] == call["id"]
    assert [(h["to_status"], h["actor"], h["actor_type"], h["comment"]) for h in history] == [
        ("active", "system", "system", call["reason"]),
        ("accepted", "olga", "user", "called, booked Tuesday"),
    ]

    # The snooze ends on the next pass after it; the unacted recommendation expires at 14 days.
    generate(wh, NOW + timedelta(days=1))
    with connect(wh) as conn:
        assert list_recommendations(conn, status="snoozed")[0]["id"] == follow_up["id"]
    back = generate(wh, NOW + timedelta(days=3))
    assert back.unsnoozed == [follow_up["id"]]
    gone = generate(wh, NOW + timedelta(days=15))
    assert gone.expired == [follow_up["id"]]
    # The acceptance's 7-day rest is over and the customer is still at risk: a second call
    # (the second of two enrollments); the expired follow-up rests for 7 days.
    assert len(gone.created) == 1
    assert generate(wh, NOW + timedelta(days=16)).created == []


def run_dbt(url: str, args: list[str], work: Path) -> subprocess.CompletedProcess[str]:
    project = PROJECT_ROOT / "dbt_project"
    # dbt re-parses only what changed since the project's own parse (seconds, not tens).
    parsed = project / "target" / "partial_parse.msgpack"
    if parsed.exists():
        (work / "target").mkdir(parents=True, exist_ok=True)
        shutil.copy(parsed, work / "target" / parsed.name)
    env = {
        **os.environ,
        **dbt_env(get_settings()),
        "OPSDASH_DBT_DBNAME": url.rsplit("/", 1)[1],
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "DBT_USE_COLORS": "false",
    }
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            *args,
            "--profiles-dir",
            str(project),
            "--target-path",
            str(work / "target"),
            "--log-path",
            str(work / "logs"),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_effectiveness_mart_measures_rebooking_after_decisions(
    warehouse_url: str, tmp_path: Path
) -> None:
    """The dbt build of the mart (its unit test included) over decisions made through the
    library, accepted beside dismissed: of two accepted check-in calls 20 days ago one customer
    booked again within 14 days; of two dismissed ones, none did (one booked after 16 days,
    past the window)."""
    decided = datetime.now(UTC) - timedelta(days=20)
    with connect(warehouse_url) as conn:
        conn.execute(
            "insert into app.recommendations (entity_type, entity_id, rec_type, reason_code,"
            " reason, action) select 'customer', c, 'check_in_call', 'disengaging',"
            " 'no session in 30 days', 'Call' from unnest(array[1, 2, 3, 4]) as c"
        )
        ids = [r["id"] for r in run(conn, "select id from app.recommendations order by id")]
    for rec_id in ids[:2]:
        with connect(warehouse_url) as conn:
            accept(conn, rec_id, OPERATOR, now=decided)
    for rec_id in ids[2:]:
        with connect(warehouse_url) as conn:
            dismiss(conn, rec_id, OPERATOR, "already talked to them", now=decided)
    with connect(warehouse_url) as conn:
        conn.execute(
            "insert into raw.session_requests (id, customer_id, subject_id, requested_start_at,"
            " status, created_at, updated_at) values (1, 1, 1, %s, 'pending', %s, %s),"
            " (2, 4, 1, %s, 'pending', %s, %s)",
            (
                decided + timedelta(days=4),
                decided + timedelta(days=3),
                decided,
                decided + timedelta(days=17),
                decided + timedelta(days=16),
                decided,
            ),
        )

    done = run_dbt(
        warehouse_url,
        [
            "build",
            "--select",
            "+recommendation_effectiveness",
            # tests of the parents that need unselected models (relationships) stay out
            "--indirect-selection",
            "cautious",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert "recommendation_effectiveness_rebooking_share" in done.stdout

    with connect(warehouse_url) as conn:
        rows = effectiveness(conn)
    assert [
        (r["rec_type"], r["outcome"], r["customers_measured"], r["customers_rebooked"])
        for r in rows
    ] == [("check_in_call", "accepted", 2, 1), ("check_in_call", "dismissed", 2, 0)]
    assert [float(r["rebooked_share"]) for r in rows] == [0.5, 0.0]


@pytest.fixture
def cli_wh(wh: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The scratch warehouse as the CLI's settings see it."""
    monkeypatch.setenv("WAREHOUSE_URL", wh)
    reset_settings()
    yield wh
    monkeypatch.undo()
    reset_settings()


def test_cli_lists_and_acts_as_a_named_user(cli_wh: str) -> None:
    from click.testing import CliRunner

    from opsdash_core.accounts import create_user
    from opsdash_stack.cli import main as opsdash_cli

    wh = cli_wh

    at_risk_customer(wh, 101)
    generate(wh)
    with connect(wh) as conn:
        create_user(conn, "olga", "operator-secret", "operator", actor="test")
        create_user(conn, "victor", "viewer-secret", "viewer", actor="test")
        call = next(r for r in list_recommendations(conn) if r["rec_type"] == "check_in_call")
    runner = CliRunner()

    listed = runner.invoke(opsdash_cli, ["recs", "list"])
    assert listed.exit_code == 0, listed.output
    assert f"#{call['id']}" in listed.output
    assert "no session in 23 days" in listed.output

    refused = runner.invoke(opsdash_cli, ["recs", "accept", str(call["id"]), "--user", "victor"])
    assert refused.exit_code == 1
    assert "operator role" in refused.output
    snoozed = runner.invoke(
        opsdash_cli, ["recs", "snooze", str(call["id"]), "--user", "olga", "--until", "3d"]
    )
    assert snoozed.exit_code == 0, snoozed.output
    assert f"recommendation #{call['id']} snoozed until" in snoozed.output
    with connect(wh) as conn:
        [row] = list_recommendations(conn, status="snoozed")
    assert (row["id"], row["acted_by"]) == (call["id"], "olga")
    # it was due to expire before the snooze ends: it now lasts a day past it
    assert row["expires_at"] == row["snoozed_until"] + timedelta(days=1)


def test_dagster_asset_generates_and_reports_counts(wh: str) -> None:
    from orchestration.defs.recommendations.assets import recommendations
    from orchestration.defs.resources import WarehouseResource

    at_risk_customer(wh, 101)
    # called as a plain function: the asset's body with its resource, no Dagster instance
    result = recommendations(warehouse=WarehouseResource(url=wh))
    assert result.metadata is not None
    assert result.metadata["created"] == 2
    assert result.metadata["families"] == "customer, tutor, supply"
    with connect(wh) as conn:
        assert len(list_recommendations(conn)) == 2

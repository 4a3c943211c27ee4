"""Demand forecasting against real PostgreSQL and a real MLflow server: the I/O, the
forecasting run with its MLflow registration and promotion gate, the Dagster assets, and
monitoring whose history the alert engine's forecast_accuracy rule turns into alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import psycopg
import pytest

from alerting.config import load_rules
from alerting.engine import TickReport, run_tick
from ml.forecasting import io
from ml.forecasting.pipeline import forecast_subjects, monitor_day
from ml.registry import promote, rollback
from opsdash_core import events
from orchestration.defs.forecasting.assets import demand_forecasts
from orchestration.defs.resources import MlflowResource, WarehouseResource
from tests.integration.test_ml_mlflow import aliases

pytestmark = pytest.mark.integration


NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
MART_DDL = """
create schema if not exists marts;
create table marts.supply_demand_hourly (
    subject_id bigint not null,
    hour_at timestamptz not null,
    requested_sessions bigint not null,
    available_tutor_hours numeric not null default 0,
    primary key (subject_id, hour_at)
)
"""


def seed_demand(url: str, weeks: int = 9) -> None:
    """Subjects 1-3: afternoon peaks, quiet weekends, Poisson noise, `weeks` of history up to
    now; subject 4 started three days ago."""
    rng = np.random.default_rng(5)
    start = NOW - timedelta(weeks=weeks)
    hours = [start + timedelta(hours=h) for h in range(weeks * 168)]
    rows = []
    for subject in (1, 2, 3):
        for at in hours:
            peak = max(0.0, np.sin((at.hour - 6) / 24 * 2 * np.pi)) * 6 * subject
            rate = peak * (0.5 if at.weekday() >= 5 else 1.0) + 0.2
            rows.append((subject, at, int(rng.poisson(rate))))
    rows += [(4, at, int(rng.poisson(2))) for at in hours[-72:]]
    with psycopg.connect(url) as conn:
        conn.execute(MART_DDL)
        with conn.cursor() as cur:
            cur.executemany(
                "insert into marts.supply_demand_hourly (subject_id, hour_at, requested_sessions)"
                " values (%s, %s, %s)",
                rows,
            )


def test_history_reads_whole_hours_before_as_of(warehouse_url: str) -> None:
    seed_demand(warehouse_url, weeks=2)
    with psycopg.connect(warehouse_url) as conn:
        history = io.load_demand_history(conn, NOW + timedelta(minutes=30), days=7)
    assert set(history["unique_id"]) == {"1", "2", "3", "4"}
    assert history["ds"].max() == (NOW - timedelta(hours=1)).replace(tzinfo=None)
    assert history["ds"].min() == (NOW - timedelta(days=7)).replace(tzinfo=None)
    assert history.groupby("unique_id").size()["1"] == 7 * 24


def test_forecast_run_writes_tables_and_registers_with_a_gate(
    warehouse_url: str,
    mlflow_uri: str,
) -> None:
    seed_demand(warehouse_url)
    with psycopg.connect(warehouse_url) as conn:
        first = forecast_subjects(conn, NOW, slow_budget_seconds=0, tracking_uri=mlflow_uri)
        conn.commit()
        counts = conn.execute(
            "select subject_id, count(*), bool_and(is_fallback), min(hour_at), max(hour_at)"
            " from ml.demand_forecasts where run_id = %s group by 1 order by 1",
            (first.run_id,),
        ).fetchall()
        backtests = conn.execute(
            "select count(distinct origin_at), count(distinct subject_id),"
            " count(*) filter (where is_served)"
            " from ml.forecast_backtests where run_id = %s",
            (first.run_id,),
        ).fetchone()
    assert [c[0] for c in counts] == [1, 2, 3, 4]
    assert all(c[1] == 168 for c in counts)
    assert [c[2] for c in counts] == [False, False, False, True]  # 3 days: flagged fallback
    assert all(c[3] == NOW and c[4] == NOW + timedelta(hours=167) for c in counts)
    assert backtests is not None
    assert backtests[0] == 4  # origins
    assert backtests[1] == 3  # the 3-day subject is not backtested
    assert backtests[2] == 3 * 4  # served model's row per subject and origin
    assert first.share_beating_naive == 1.0
    assert first.registration["alias"] == "champion"

    with psycopg.connect(warehouse_url) as conn:
        second = forecast_subjects(conn, NOW, slow_budget_seconds=0, tracking_uri=mlflow_uri)
    # Same data, same choices: not better by the margin, so it waits as challenger.
    assert second.registration["alias"] == "challenger"
    version_1, version_2 = first.registration["version"], second.registration["version"]
    assert aliases(mlflow_uri, "demand_forecast")["champion"] == version_1
    promote(mlflow_uri, "demand_forecast", version_2)
    assert aliases(mlflow_uri, "demand_forecast")["champion"] == version_2
    assert rollback(mlflow_uri, "demand_forecast") == version_1

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri)
    run = client.get_run(second.registration["mlflow_run_id"])
    assert "mase.subject_1" in run.data.metrics
    assert "coverage_day_7" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {f"plots/subject_{s}.png" for s in (1, 2, 3, 4)}
    selection = {a.path for a in client.list_artifacts(run.info.run_id, "selection")}
    assert "selection/choices.csv" in selection


def test_forecast_asset_materializes_both_tables(warehouse_url: str) -> None:
    seed_demand(warehouse_url)
    before = events.latest_id()
    result = dg.materialize(
        [demand_forecasts],
        resources={
            "warehouse": WarehouseResource(url=warehouse_url),
            "mlflow": MlflowResource(tracking_uri="unused"),
        },
        run_config={
            "ops": {
                "demand_forecasts": {
                    "config": {"track_in_mlflow": False, "prophet_budget_seconds": 0}
                }
            }
        },
    )
    assert result.success
    by_key = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.get_asset_materialization_events()
        for m in [m.event_specific_data.materialization]
    }
    assert by_key["ml/demand_forecasts"]["rows"].value == 4 * 168
    assert by_key["ml/demand_forecasts"]["fallback_subjects"].value == 1
    assert by_key["ml/forecast_backtests"]["rows"].value > 0
    # The app hears of the new forecast on the live-event stream, with its run id.
    (published,) = [e.data for e in events.read_since(before) if e.type == "forecast_updated"]
    assert published["run_id"] == by_key["ml/demand_forecasts"]["run_id"].value
    assert (published["rows"], published["subjects"], published["fallback_subjects"]) == (
        4 * 168,
        4,
        1,
    )


def forecast_alert_tick(conn: psycopg.Connection, now: datetime) -> TickReport:
    """The alert sensor's minute tick for the forecast rule (the one path that alerts)."""
    config = load_rules(override=False)
    rules = [config.rule("forecast_accuracy")]
    return run_tick(conn, config, rules=rules, now=now, publish=False)


def test_three_bad_days_of_monitoring_raise_one_warning_alert_per_subject(
    warehouse_url: str,
) -> None:
    seed_demand(warehouse_url)
    today = NOW.replace(hour=0)
    with psycopg.connect(warehouse_url) as conn:
        forecast_alert_tick(conn, NOW - timedelta(days=3))  # first evaluation: nothing yet
        for back in (3, 2, 1):
            day = today - timedelta(days=back)
            hours = [day + timedelta(hours=h) for h in range(24)]
            issued = day - timedelta(hours=2)
            rows = [
                (f"r{back}", s, at, 50.0, 45.0, 55.0, "window_average", False, issued)
                for s in (1, 2)
                for at in hours
            ]
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into ml.demand_forecasts (run_id, subject_id, hour_at, yhat,"
                    " yhat_lower, yhat_upper, model, is_fallback, created_at)"
                    " values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    rows,
                )
        conn.commit()
        outcomes = [monitor_day(conn, (today - timedelta(days=back)).date()) for back in (3, 2, 1)]
        conn.commit()
        # Monitoring stores the accuracy and opens nothing itself.
        assert conn.execute("select count(*) from app.alerts").fetchone() == (0,)
        history = conn.execute("select count(*) from ml.model_monitoring").fetchone()
        first = forecast_alert_tick(conn, NOW)
        second = forecast_alert_tick(conn, NOW + timedelta(minutes=1))
        alerts = conn.execute(
            "select rule, entity_id, severity, status, title from app.alerts order by entity_id"
        ).fetchall()
        outbox = conn.execute("select channel, subject from app.notification_outbox").fetchall()
    assert outcomes[-1].degraded == ["1", "2"]
    assert outcomes[0].mean_mase is not None
    assert outcomes[0].mean_mase > 1.2
    assert history == (6,)
    assert [a[:4] for a in alerts] == [
        ("forecast_accuracy", 1, "warning", "open"),
        ("forecast_accuracy", 2, "warning", "open"),
    ]
    assert alerts[0][4].startswith("Demand forecast for subject 1 degraded: MASE ")
    assert len(first.outcomes[0].opened) == 2
    assert second.outcomes[0].opened == []
    # One grouped notification for both, after group_wait; a warning goes to Slack.
    assert outbox == [("slack", "[opsdash] WARNING: 2 forecast accuracy alerts")]

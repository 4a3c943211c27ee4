"""The quality checks wired into Dagster: an in-process run of raw/sessions, its checks and a
downstream asset, against real PostgreSQL; failures reach a real SMTP sink and a real webhook
receiver through the alert engine's check rules (the one notification path)."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
from psycopg.rows import dict_row

from alerting.config import load_rules
from alerting.engine import TickReport, run_tick
from opsdash_core.notify import deliver_pending
from opsdash_core.settings import get_settings, reset_settings
from opsdash_stack.sinks import WebhookReceiver, free_port, smtp_sink, webhook_receiver
from orchestration.defs.ingestion.assets import INGESTION_ASSETS, SupportApiResource
from orchestration.defs.quality.checks import QUALITY_CHECKS, failed_blocking_checks
from orchestration.defs.resources import SourceDbResource, WarehouseResource

pytestmark = pytest.mark.integration

SESSIONS = dg.AssetKey(["raw", "sessions"])
DOWNSTREAM = dg.AssetKey(["marts", "sessions_downstream"])


@dg.asset(key=DOWNSTREAM, deps=[SESSIONS])
def downstream(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Stands in for the dbt models built from raw.sessions."""
    with warehouse.connect() as conn:
        count = conn.execute("select count(*) from raw.sessions").fetchone()[0]  # type: ignore[index]
    return dg.MaterializeResult(metadata={"rows": count})


SESSION_ASSET = next(a for a in INGESTION_ASSETS if SESSIONS in a.keys)
SESSION_CHECKS = [c for c in QUALITY_CHECKS if any(k.asset_key == SESSIONS for k in c.check_keys)]


SEED = (
    "insert into raw.tutors (id, status, created_at, updated_at)"
    " select g, 'active', %(t)s, %(t)s from generate_series(1, 5) g",
    "insert into raw.customers (id, status, created_at, updated_at)"
    " select g, 'active', %(t)s, %(t)s from generate_series(1, 10) g",
    "insert into raw.subjects (id, name, category, created_at, updated_at)"
    " values (1, 'Algebra', 'math', %(t)s, %(t)s)",
    "insert into raw.watermarks (table_name, watermark)"
    " values ('customers', %(now)s), ('tutors', %(now)s), ('subjects', %(now)s)",
)


@dataclass
class Env:
    warehouse: str
    source: str
    smtp_port: int
    hooks: WebhookReceiver
    instance: dg.DagsterInstance
    now: datetime


@pytest.fixture
def env(
    warehouse_url: str, source_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Env]:
    with psycopg.connect(warehouse_url) as conn:
        now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        for statement in SEED:
            conn.execute(statement, {"t": now - timedelta(days=30), "now": now})
    smtp_port = free_port()
    with webhook_receiver(0) as hooks, dg.DagsterInstance.ephemeral() as instance:
        monkeypatch.setenv("WAREHOUSE_URL", warehouse_url)
        monkeypatch.setenv("SOURCE_URL", source_url)
        monkeypatch.setenv("OPSDASH_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("SMTP_PORT", str(smtp_port))
        monkeypatch.setenv("ALERT_EMAIL_TO", "ops@example.test")
        monkeypatch.setenv("SLACK_WEBHOOK_URL", hooks.url)
        reset_settings()
        yield Env(warehouse_url, source_url, smtp_port, hooks, instance, now)
    reset_settings()


def source_session(i: int, now: datetime, **over: Any) -> dict[str, Any]:
    row = {
        "id": i,
        "customer_id": 1 + i % 10,
        "tutor_id": 1 + i % 5,
        "subject_id": 1,
        "session_request_id": None,
        "scheduled_at": now - timedelta(days=1),
        "duration_minutes": 60,
        "status": "completed",
        "cancelled_by": None,
        "no_show_by": None,
        "rating": 4,
        "is_first_session": False,
        "created_at": now - timedelta(days=2),
        "updated_at": now - timedelta(minutes=30),
    }
    row.update(over)
    return row


def add_source_sessions(url: str, rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            f"insert into tutoring_sessions ({', '.join(cols)})"
            f" values ({', '.join(['%s'] * len(cols))})",
            [tuple(r[c] for c in cols) for r in rows],
        )


def materialize(env: Env, *assets: Any) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [SESSION_ASSET, downstream, *SESSION_CHECKS, *assets],
        resources={
            "warehouse": WarehouseResource(),
            "source_db": SourceDbResource(),
            "support_api": SupportApiResource(),
        },
        instance=env.instance,
        raise_on_error=False,
    )


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def alert_tick(env: Env, now: datetime | None = None) -> TickReport:
    """The alert sensor's minute tick for the two check rules, then delivery of what it queued."""
    config = load_rules(override=False)
    chosen = [config.rule("check_failed"), config.rule("check_warning")]
    with psycopg.connect(env.warehouse) as conn:
        report = run_tick(conn, config, rules=chosen, now=now or datetime.now(UTC), publish=False)
    deliver_pending(env.warehouse, get_settings(), backoff_s=0.01)
    return report


def materialized(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {
        e.asset_key
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key is not None
    }


def rows(url: str, query: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query)
        return cur.fetchall()


def test_bad_batch_blocks_downstream_then_good_data_flows_again(env: Env) -> None:
    now = env.now
    good = [source_session(i, now) for i in range(1, 21)]
    bad = [
        source_session(101, now, tutor_id=999),  # passes the row contract, unknown tutor
        source_session(102, now, rating=7),  # quarantined at ingestion
        source_session(103, now, rating=7),
        source_session(104, now, customer_id=None),
        source_session(105, now, created_at=now + timedelta(days=1)),
    ]
    add_source_sessions(env.source, good + bad)
    alert_tick(env, now)  # the rules' first evaluation: nothing failing yet

    with smtp_sink(env.smtp_port) as mail:
        first = materialize(env)
        checks = evaluations(first)
        assert SESSIONS in materialized(first)  # the load itself is recorded
        assert DOWNSTREAM not in materialized(first)  # ... but nothing is built from it

        batch = checks["valid_batch"]
        assert not batch.passed
        assert batch.severity == dg.AssetCheckSeverity.ERROR
        assert batch.metadata["failed_expectations"].value == 1
        assert batch.metadata["observed_values"].value == {"tutor_id references raw.tutors.id": 1}
        sample = batch.metadata["sample_bad_rows"].value["tutor_id references raw.tutors.id"]
        assert [(r["id"], r["tutor_id"]) for r in sample] == [(101, 999)]
        assert "tutor_id references raw.tutors.id" in batch.metadata["summary"].value
        assert batch.metadata["data_docs"].value.startswith("file://")

        quarantine = checks["quarantine_rate"]
        assert not quarantine.passed
        assert quarantine.severity == dg.AssetCheckSeverity.ERROR
        observed = quarantine.metadata["observed_values"].value
        assert observed == {
            "rows quarantined by the load <= max(2, 1% of rows read)": {
                "quarantined": 4,
                "rows_read": 25,
                "rate": 0.16,
            }
        }
        reasons = [
            r["reason"]
            for r in quarantine.metadata["sample_bad_rows"].value[
                "rows quarantined by the load <= max(2, 1% of rows read)"
            ]
        ]
        assert len(reasons) == 4
        assert any("rating" in r for r in reasons)

        assert checks["trends"].passed

        # The run itself sends nothing; the alert sensor's next tick raises one alert per
        # failed blocking check and notifies them together (critical: email and Slack).
        assert mail.messages == []
        tick = alert_tick(env)
        assert mail.wait_for(1)
        assert env.hooks.wait_for(1)
        assert len(mail.messages) == 1
        assert len(env.hooks.payloads) == 1
        assert len(tick.dispatch.notified) == 2
        text = mail.messages[0].get_body().get_content()  # type: ignore[union-attr]
        assert "Blocking check valid_batch failed on raw/sessions" in text
        assert "tutor_id references raw.tutors.id (observed 1)" in text
        assert "Blocking check quarantine_rate failed on raw/sessions" in text
        assert '"quarantined": 4' in text
        assert "valid_batch failed on raw/sessions" in str(env.hooks.payloads[0])

    alerts = rows(
        env.warehouse,
        "select rule, status, details ->> 'check_name' as check_name from app.alerts order by 3",
    )
    assert alerts == [
        {"rule": "check_failed", "status": "open", "check_name": "quarantine_rate"},
        {"rule": "check_failed", "status": "open", "check_name": "valid_batch"},
    ]
    assert [k.name for k in failed_blocking_checks(env.instance, [SESSIONS])] == [
        "quarantine_rate",
        "valid_batch",
    ]
    stored = rows(env.warehouse, "select check_name, success from quality.check_runs order by 1")
    assert stored == [
        {"check_name": "quarantine_rate", "success": False},
        {"check_name": "trends", "success": True},
        {"check_name": "valid_batch", "success": False},
    ]

    # Good data again: the loader re-reads its lookback (the bad rows too) but quarantines
    # nothing new, and only the new batch is checked, so the downstream catches up.
    add_source_sessions(
        env.source, [source_session(i, now, updated_at=now) for i in range(200, 210)]
    )
    with smtp_sink(env.smtp_port) as mail:
        second = materialize(env)
        checks = evaluations(second)
        assert all(e.passed for e in checks.values()), {
            n: e.metadata.get("summary") for n, e in checks.items()
        }
        assert checks["valid_batch"].metadata["rows_checked"].value == 10
        assert DOWNSTREAM in materialized(second)
        # Passing again resolves both alerts, with one resolved notification.
        alert_tick(env)
        assert mail.wait_for(1)
        assert mail.messages[0]["Subject"].startswith("[opsdash] CRITICAL: Resolved:")
    statuses = rows(env.warehouse, "select status from app.alerts")
    assert statuses == [{"status": "resolved"}, {"status": "resolved"}]
    assert failed_blocking_checks(env.instance, [SESSIONS]) == []
    counts = rows(env.warehouse, "select count(*) as n from raw.sessions")
    assert counts == [{"n": 31}]  # the good rows of the bad cycle were kept


def test_a_failing_warning_shows_but_does_not_block(env: Env) -> None:
    stale = env.now - timedelta(days=1)
    add_source_sessions(
        env.source, [source_session(i, env.now, updated_at=stale) for i in range(1, 11)]
    )
    result = materialize(env)
    checks = evaluations(result)
    assert checks["valid_batch"].passed
    assert checks["quarantine_rate"].passed
    trends = checks["trends"]
    assert not trends.passed
    assert trends.severity == dg.AssetCheckSeverity.WARN
    assert set(trends.metadata["observed_values"].value) == {"newest updated_at within 2 h of now"}
    assert DOWNSTREAM in materialized(result)
    # A warning-only check raises a warning alert, which is routed to Slack.
    alert_tick(env)
    assert env.hooks.wait_for(1)
    posted = str(env.hooks.payloads[0])
    assert "Check trends failed on raw/sessions" in posted
    assert "newest updated_at within 2 h of now" in posted
    alerts = rows(env.warehouse, "select rule, severity from app.alerts")
    assert alerts == [{"rule": "check_warning", "severity": "warning"}]

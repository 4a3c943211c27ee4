"""People's alert operations (acknowledge, resolve, dismiss, silences, lists) against a real
PostgreSQL warehouse and the test stack's Redis (live events)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from alerting import operations as ops
from opsdash_core import events
from opsdash_core.accounts import PermissionDeniedError, User
from opsdash_core.db import connect

pytestmark = pytest.mark.integration

VIEWER = User(id=1, username="vera", role="viewer")
OPERATOR = User(id=2, username="otto", role="operator")
ADMIN = User(id=3, username="ada", role="admin")


@pytest.fixture
def conn(warehouse_url: str) -> Iterator[psycopg.Connection]:
    with connect(warehouse_url) as c:
        yield c


def open_alert(
    conn: psycopg.Connection, entity_id: int = 7, rule: str = "tutor_underperforming"
) -> int:
    row = conn.execute(
        "insert into app.alerts (rule, entity_type, entity_id, severity, title, dedupe_key)"
        " values (%s, 'tutor', %s, 'warning', 'Tutor underperforming', %s) returning id",
        (rule, entity_id, f"{rule}:{entity_id}"),
    ).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0])


def table(conn: psycopg.Connection, sql: str, *params: object) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def test_viewer_cannot_acknowledge_operator_can_and_it_is_recorded(
    conn: psycopg.Connection,
) -> None:
    alert_id = open_alert(conn)
    with pytest.raises(PermissionDeniedError):
        ops.acknowledge(conn, alert_id, VIEWER, "mine")
    assert ops.get_alert(conn, alert_id)["status"] == "open"  # type: ignore[index]
    assert table(conn, "select * from app.alert_events") == []

    before = events.latest_id()
    row = ops.acknowledge(conn, alert_id, OPERATOR, "calling the tutor")
    assert row["status"] == "acknowledged"
    alert = ops.get_alert(conn, alert_id)
    assert alert is not None
    assert (alert["acknowledged_by"], alert["ack_comment"]) == ("otto", "calling the tutor")
    assert alert["acknowledged_at"] is not None
    (event,) = ops.alert_events(conn, alert_id)
    assert (event["actor"], event["actor_type"], event["kind"]) == ("otto", "user", "status")
    assert (event["from_status"], event["to_status"], event["note"]) == (
        "open",
        "acknowledged",
        "calling the tutor",
    )
    (audit,) = table(conn, "select username, action, details from app.audit_log")
    assert (audit["username"], audit["action"]) == ("otto", "alert_acknowledged")
    assert audit["details"]["alert_id"] == alert_id
    published = [e for e in events.read_since(before) if e.type == "alert_updated"]
    assert [(e.data["id"], e.data["status"]) for e in published] == [(alert_id, "acknowledged")]

    with pytest.raises(ops.AlertStateError, match="acknowledging needs it open"):
        ops.acknowledge(conn, alert_id, ADMIN)
    ops.resolve(conn, alert_id, ADMIN, "coached")
    with pytest.raises(ops.AlertStateError):
        ops.dismiss(conn, alert_id, ADMIN, "too late")
    statuses = [e["to_status"] for e in ops.alert_events(conn, alert_id)]
    assert statuses == ["acknowledged", "resolved"]
    assert ops.get_alert(conn, alert_id)["closed_by"] == "ada"  # type: ignore[index]


def test_dismiss_needs_a_comment_and_lists_filter(conn: psycopg.Connection) -> None:
    first, second = open_alert(conn, 1), open_alert(conn, 2)
    with pytest.raises(ops.AlertStateError, match="comment"):
        ops.dismiss(conn, first, OPERATOR, " ")
    ops.dismiss(conn, first, OPERATOR, "tutor left the platform")
    assert [a["id"] for a in ops.list_alerts(conn, status="live")] == [second]
    assert [a["id"] for a in ops.list_alerts(conn, status="dismissed")] == [first]
    assert [a["id"] for a in ops.list_alerts(conn, entity_type="tutor", entity_id=1)] == [first]
    (group,) = ops.alert_groups(conn)
    assert (group["rule"], group["total"], group["open"], group["dismissed"]) == (
        "tutor_underperforming",
        2,
        1,
        1,
    )
    assert group["newest_id"] in (first, second)


def test_silences_need_matcher_comment_and_end_and_can_be_expired(conn: psycopg.Connection) -> None:
    ends = datetime.now(UTC) + timedelta(hours=2)
    with pytest.raises(PermissionDeniedError):
        ops.create_silence(conn, VIEWER, rule="x", ends_at=ends, comment="maintenance")
    with pytest.raises(ops.AlertStateError, match="matcher"):
        ops.create_silence(conn, OPERATOR, ends_at=ends, comment="maintenance")
    with pytest.raises(ops.AlertStateError, match="comment"):
        ops.create_silence(conn, OPERATOR, rule="x", ends_at=ends, comment="")
    with pytest.raises(ops.AlertStateError, match="future"):
        ops.create_silence(
            conn, OPERATOR, rule="x", ends_at=datetime.now(UTC) - timedelta(1), comment="c"
        )
    silence_id = ops.create_silence(
        conn, OPERATOR, rule="sessions_stale", ends_at=ends, comment="ingest maintenance"
    )
    (active,) = ops.list_silences(conn)
    assert (active["id"], active["created_by"], active["rule"]) == (
        silence_id,
        "otto",
        "sessions_stale",
    )
    ops.expire_silence(conn, silence_id, ADMIN)
    assert ops.list_silences(conn) == []
    (ended,) = ops.list_silences(conn, active_only=False)
    assert ended["expired_by"] == "ada"
    actions = [r["action"] for r in table(conn, "select action from app.audit_log order by id")]
    assert actions == ["silence_created", "silence_expired"]


def test_cli_acts_through_the_same_operations(
    conn: psycopg.Connection, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from opsdash_core.settings import reset_settings
    from opsdash_stack.alert_commands import alerts

    monkeypatch.setenv("WAREHOUSE_URL", warehouse_url)
    reset_settings()
    alert_id = open_alert(conn, 9)
    runner = CliRunner()
    listed = runner.invoke(alerts, ["list"])
    assert listed.exit_code == 0, listed.output
    assert "Tutor underperforming" in listed.output
    acked = runner.invoke(alerts, ["ack", str(alert_id), "-m", "looking", "--user", "root"])
    assert acked.exit_code == 0, acked.output
    assert f"alert {alert_id} is now acknowledged" in acked.output
    again = runner.invoke(alerts, ["ack", str(alert_id), "--user", "root"])
    assert again.exit_code == 1
    assert "acknowledging needs it open" in again.output
    silenced = runner.invoke(
        alerts,
        ["silence", "--rule", "support_surge", "--for", "2h", "-m", "drill", "--user", "root"],
    )
    assert silenced.exit_code == 0, silenced.output
    (audit,) = table(conn, "select username from app.audit_log where action = 'alert_acknowledged'")
    assert audit["username"] == "root"
    assert ops.list_silences(conn)[0]["created_by"] == "root"
    reset_settings()

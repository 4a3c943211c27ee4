"""What the Alerts page reads, through the versioned query cache (`data.cached_query`, domain
"alerts"): the same constant SQL `alerting.operations` runs, so the CLI, the engine and the app
agree on what a filter means. Writes still go through `alerting.operations` (role checks, event
and audit rows); after one, the page calls `data.invalidate("alerts")`, and the engine's
`alert_created` / `alert_updated` events move the version for every process.

Cached rows went through JSON: timestamps are ISO strings. `get_alert` turns its `*_at` fields
back into datetimes for the detail view.
"""

from __future__ import annotations

from datetime import datetime

from alerting import operations as ops
from app_streamlit.data import Row, cached_query, parse_ts

DOMAIN = "alerts"

GET_ALERT_SQL = "select * from app.alerts where id = %(id)s"


def rules() -> list[str]:
    """Every rule that has alerts, worst and newest first (the rule filter's choices)."""
    params = {"status": None, "severity": None}
    rows = cached_query("alert_groups", ops.ALERT_GROUPS_SQL, params, domain=DOMAIN) or []
    return [str(r["rule"]) for r in rows]


def list_alerts(
    *,
    status: str | None,
    severity: str | None = None,
    rule: str | None = None,
    entity_type: str | None = None,
    entity_id: int | None = None,
    limit: int = 200,
) -> list[Row]:
    """`ops.list_alerts` through the cache (`status` "live" = open and acknowledged)."""
    params = {
        "status": ops._statuses(status),
        "severity": severity,
        "rule": rule,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "limit": limit,
    }
    return cached_query("alerts_list", ops.LIST_ALERTS_SQL, params, domain=DOMAIN) or []


def get_alert(alert_id: int) -> Row | None:
    """One alert with every column (timestamps as datetimes), or None."""
    rows = cached_query("alert", GET_ALERT_SQL, {"id": alert_id}, domain=DOMAIN)
    if not rows:
        return None
    return {k: _as_time(k, v) for k, v in rows[0].items()}


def alert_events(alert_id: int) -> list[Row]:
    """An alert's history, oldest first."""
    return cached_query("alert_events", ops.ALERT_EVENTS_SQL, {"id": alert_id}, domain=DOMAIN) or []


def silences() -> list[Row]:
    """Active silences, newest end first."""
    params = {"active_only": True}
    return cached_query("silences", ops.LIST_SILENCES_SQL, params, domain=DOMAIN) or []


def _as_time(key: str, value: object) -> object:
    if key.endswith("_at") and isinstance(value, str):
        parsed: datetime | None = parse_ts(value)
        return parsed
    return value

"""Live events for refreshed data: the customer-health mart, the ops KPIs and new forecasts.

A reader learns that the data behind a view changed without polling the warehouse: the app
versions its cached reads by them (`customer_health_updated` -> customers, `forecast_updated`
-> forecasts, `metric_update` -> the overview's KPIs from marts.ops_kpis_daily), so a refreshed
mart shows at its next poll instead of when a cache entry expires. The
payload is small - the run that wrote the data, a few counts and the data's as-of time -
because the rows themselves are in PostgreSQL.

Publishing never fails the run that refreshed the data: a failed count is left out of the
payload and an unreachable Redis is logged by `events.publish` (the data is committed either
way; a reader falls back to its cache TTL).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from opsdash_core import events

log = logging.getLogger(__name__)

ConnFactory = Callable[[], AbstractContextManager[psycopg.Connection]]

# The customers this build rewrote (the newest computed_at, found by its index), not the whole
# mart: a count over every customer would add a scan of a million rows to every cycle at S10,
# a cost that grows with history rather than with what arrived.
CUSTOMER_HEALTH_SQL = """
select
    count(*) as customers_refreshed,
    count(*) filter (where risk_tier in ('high', 'critical')) as at_risk_refreshed,
    count(*) filter (where risk_tier = 'critical') as critical_refreshed,
    max(computed_at) as as_of
from marts.customer_health
where computed_at = (select max(computed_at) from marts.customer_health)
"""

OPS_KPIS_SQL = """
select count(*) as days, max(kpi_date) as kpi_date
from marts.ops_kpis_daily
"""

# relation (as the dbt asset key names it) -> the event its refresh publishes and its counts
MART_EVENTS: dict[tuple[str, str], tuple[str, str]] = {
    ("marts", "customer_health"): ("customer_health_updated", CUSTOMER_HEALTH_SQL),
    ("marts", "ops_kpis_daily"): ("metric_update", OPS_KPIS_SQL),
}


def _counts(connect: ConnFactory, sql: str) -> dict[str, Any]:
    """The mart's counts, or {} when they cannot be read (the event still goes out)."""
    try:
        with connect() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql)
            row = cur.fetchone()
    except psycopg.Error as exc:
        log.warning("live event without counts: %s", exc)
        return {}
    return dict(row or {})


def publish_mart_refreshed(
    relation: tuple[str, ...], run_id: str, connect: ConnFactory
) -> str | None:
    """After dbt built `relation` (committed): its live event, if it has one.

    Returns the stream id, or None when the relation has no event or Redis is unavailable.
    """
    known = MART_EVENTS.get((relation[0], relation[-1])) if relation else None
    if known is None:
        return None
    event_type, sql = known
    payload = {
        "relation": ".".join(relation),
        "run_id": run_id,
        "refreshed_at": datetime.now(UTC),
        **_counts(connect, sql),
    }
    return events.publish(event_type, payload)


def publish_forecast_updated(run_id: str, summary: Mapping[str, Any]) -> str | None:
    """After a forecasting run's rows were committed: `forecast_updated` with its counts."""
    payload = {"run_id": run_id, "refreshed_at": datetime.now(UTC), **summary}
    return events.publish("forecast_updated", payload)

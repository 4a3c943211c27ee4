"""The daily email digest: info-severity notifications wait in the outbox as 'digest' rows and
go out together once a day (routing in opsdash_core.notify.enqueue_routed).

A sensor, not a schedule: like the other alerting sensors it does its few SQL statements and
one SMTP send inside the tick instead of paying for a run. It checks hourly and acts once per
day after DIGEST_HOUR_UTC; the cursor holds the last digest date.
"""

# No `from __future__ import annotations`: Dagster reads the resource parameter's annotation.

from datetime import UTC, datetime

import dagster as dg

from opsdash_core.notify import build_daily_digest, deliver_pending
from opsdash_core.settings import get_settings
from orchestration.defs.resources import WarehouseResource

DIGEST_HOUR_UTC = 7
DELIVERY_BUDGET_SECONDS = 30.0


def digest_due(now: datetime, cursor: str | None) -> bool:
    """True once per UTC day, from DIGEST_HOUR_UTC on."""
    return now.hour >= DIGEST_HOUR_UTC and cursor != now.date().isoformat()


@dg.sensor(
    name="daily_digest_sensor",
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        f"Once a day after {DIGEST_HOUR_UTC:02d}:00 UTC: folds the info-severity notifications "
        "parked in app.notification_outbox into one digest email and sends it."
    ),
)
def daily_digest_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SkipReason:
    now = datetime.now(UTC)
    if not digest_due(now, context.cursor):
        return dg.SkipReason(
            f"digest for {context.cursor} sent; next after {DIGEST_HOUR_UTC}:00 UTC"
        )
    with warehouse.connect() as conn:
        digest_id = build_daily_digest(conn, now=now)
    context.update_cursor(now.date().isoformat())
    if digest_id is None:
        return dg.SkipReason("no info notifications waited for today's digest")
    report = deliver_pending(warehouse.connect, get_settings(), budget_s=DELIVERY_BUDGET_SECONDS)
    return dg.SkipReason(f"digest {digest_id} queued; notifications: {report.summary()}")

"""Sensors that turn fresh customer-health data into alerts, and alerts into email/Slack.

Both sensors do their work inside the tick and report through the tick's skip message and log,
instead of launching runs: the work is a few SQL statements plus a handful of HTTP/SMTP calls,
and a run per minute would cost a process start and the code location's imports every time.
"""

# No `from __future__ import annotations`: Dagster reads the resource parameter's annotation.

import dagster as dg

from alerting.rules import EvaluationSummary, evaluate_customer_critical
from opsdash_core.notify import DeliveryReport, deliver_pending
from opsdash_core.settings import get_settings
from orchestration.defs.resources import WarehouseResource

CUSTOMER_HEALTH = dg.AssetKey(["marts", "customer_health"])
# A tick must finish within Dagster's sensor timeout (60 s); sending stops after this budget.
DELIVERY_BUDGET_SECONDS = 30.0


def evaluate_and_deliver(warehouse: WarehouseResource) -> tuple[EvaluationSummary, DeliveryReport]:
    """Evaluate the rule and commit, then send what the outbox holds.

    Delivery runs after the commit, so an SMTP or Slack outage never rolls back an alert; the
    rows just stay pending for the retry sensor.
    """
    with warehouse.connect() as conn:
        summary = evaluate_customer_critical(conn)
    report = deliver_pending(warehouse.connect, get_settings(), budget_s=DELIVERY_BUDGET_SECONDS)
    return summary, report


@dg.asset_sensor(
    asset_key=CUSTOMER_HEALTH,
    name="customer_critical_alert_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "After each materialization of marts/customer_health: opens an alert for every customer "
        "who entered the critical risk tier, resolves alerts of customers who left it, and sends "
        "one email and one Slack summary of the new ones."
    ),
)
def customer_critical_alert_sensor(
    context: dg.SensorEvaluationContext,
    asset_event: dg.EventLogEntry,
    warehouse: WarehouseResource,
) -> dg.SkipReason:
    # The asset sensor stores this materialization's storage id as the cursor only after this
    # function returns, i.e. after the evaluation committed; an exception retries it next tick.
    summary, report = evaluate_and_deliver(warehouse)
    message = f"{summary.describe()}; notifications: {report.summary()}"
    context.log.info("materialization %s: %s", asset_event.run_id, message)
    for outbox_id, error in report.errors.items():
        context.log.warning("notification %s not delivered: %s", outbox_id, error)
    return dg.SkipReason(message)


@dg.sensor(
    name="notification_outbox_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Every minute: sends pending email/Slack notifications from app.notification_outbox, "
        "retrying failed ones up to five times."
    ),
)
def notification_outbox_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SkipReason:
    report = deliver_pending(warehouse.connect, get_settings(), budget_s=DELIVERY_BUDGET_SECONDS)
    for outbox_id, error in report.errors.items():
        context.log.warning("notification %s not delivered: %s", outbox_id, error)
    return dg.SkipReason(f"notifications: {report.summary()}")

"""Sensors that evaluate the alert rules (alerting/rules.yaml), run the alert timers, raise an
alert for every failed run, and deliver what the outbox holds.

The sensors do their work inside the tick and report through the tick's skip message and log,
instead of launching runs: the work is a few SQL statements plus a handful of HTTP/SMTP calls,
and a run per minute would cost a process start and the code location's imports every time.
The rules file is read at every tick, so a bad edit fails the tick with a message naming the
file, rule and field, and a fixed one takes effect without a restart.
"""

# No `from __future__ import annotations`: Dagster reads the resource parameter's annotation.

import dagster as dg

from alerting.config import load_rules
from alerting.engine import TickReport, raise_event_alert, run_tick
from alerting.operations import publish_alert_events
from opsdash_core.notify import DeliveryReport, deliver_pending
from opsdash_core.settings import get_settings
from orchestration.defs.resources import WarehouseResource

CUSTOMER_HEALTH = dg.AssetKey(["marts", "customer_health"])
# A tick must finish within Dagster's sensor timeout (60 s); sending stops after this budget.
DELIVERY_BUDGET_SECONDS = 30.0
# The alert sensors tick every 30 s: at a 1-minute cycle a minute-long tick was the largest
# wait between an ingested row and its notification (the rule's evaluation after ingestion, then
# the dispatch after group_wait: up to a minute each). A tick is a few indexed queries.
ALERT_TICK_SECONDS = 30
RUN_FAILURE_RULE = "dagster_run_failed"


def evaluate_and_deliver(
    warehouse: WarehouseResource, trigger: str
) -> tuple[TickReport, DeliveryReport]:
    """Evaluate the rules of `trigger`, run the timers and dispatch (committed), then send what
    the outbox holds.

    Delivery runs after the commit, so an SMTP or Slack outage never rolls back an alert; the
    rows just stay pending for the outbox sensor.
    """
    config = load_rules()
    with warehouse.connect() as conn:
        report = run_tick(conn, config, rules=config.triggered_by(trigger))
    delivery = deliver_pending(warehouse.connect, get_settings(), budget_s=DELIVERY_BUDGET_SECONDS)
    return report, delivery


def _skip(
    context: dg.SensorEvaluationContext, report: TickReport, delivery: DeliveryReport
) -> dg.SkipReason:
    message = f"{report.describe()}; notifications: {delivery.summary()}"
    context.log.info(message)
    for outcome in report.errors:
        context.log.error("alert rule %s failed: %s", outcome.rule, outcome.error)
    for outbox_id, error in delivery.errors.items():
        context.log.warning("notification %s not delivered: %s", outbox_id, error)
    return dg.SkipReason(message)


@dg.asset_sensor(
    asset_key=CUSTOMER_HEALTH,
    name="customer_health_alert_sensor",
    minimum_interval_seconds=ALERT_TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "After each materialization of marts/customer_health: evaluates the business alert "
        "rules (customers, at-risk spike, tutors) of alerting/rules.yaml, then notifies."
    ),
)
def customer_health_alert_sensor(
    context: dg.SensorEvaluationContext,
    asset_event: dg.EventLogEntry,
    warehouse: WarehouseResource,
) -> dg.SkipReason:
    # The asset sensor stores this materialization's storage id as the cursor only after this
    # function returns, i.e. after the evaluation committed; an exception retries it next tick.
    report, delivery = evaluate_and_deliver(warehouse, "customer_health")
    context.log.info("materialization %s", asset_event.run_id)
    return _skip(context, report, delivery)


@dg.sensor(
    name="alert_rules_sensor",
    minimum_interval_seconds=ALERT_TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Every 30 s: evaluates the minute-cadence alert rules (data and pipeline health, "
        "support surge, supply gap, models), returns timed-out acknowledgements to open, sends "
        "grouped and repeat notifications, and records the alert sensors' heartbeat."
    ),
)
def alert_rules_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SkipReason:
    report, delivery = evaluate_and_deliver(warehouse, "minute")
    return _skip(context, report, delivery)


def failure_text(context: dg.RunFailureSensorContext) -> str:
    """What failed, in the failing steps' own words: the run-level message only says "steps
    failed", while the cause (a refused pickle, an unreachable source) is on each step's error,
    at the bottom of its chain of causes."""
    lines = []
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None and error.cause is not None:
            error = error.cause
        message = (error.message if error is not None else "").strip()
        lines.append(f"{event.step_key}: {message}")
    run_message = context.failure_event.message or ""
    return "\n".join(lines) if lines else run_message


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=False,
    description=(
        "Raises a dagster_run_failed alert for every failed run (one live alert per job; a "
        "repeated failure adds an occurrence); the alert_rules_sensor notifies it."
    ),
)
def run_failure_alert_sensor(
    context: dg.RunFailureSensorContext, warehouse: WarehouseResource
) -> None:
    run = context.dagster_run
    error = failure_text(context)
    rule = load_rules().rule(RUN_FAILURE_RULE)
    with warehouse.connect() as conn:
        report = TickReport()
        raise_event_alert(
            conn,
            rule,
            entity_key=run.job_name,
            title=f"Dagster run of {run.job_name} failed",
            details={"run_id": run.run_id, "job_name": run.job_name, "error": error[:2000]},
            report=report,
        )
        conn.commit()
    publish_alert_events(report.created, report.updated)


@dg.sensor(
    name="notification_outbox_sensor",
    minimum_interval_seconds=ALERT_TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 30 s: sends pending email/Slack notifications from app.notification_outbox.",
)
def notification_outbox_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SkipReason:
    report = deliver_pending(warehouse.connect, get_settings(), budget_s=DELIVERY_BUDGET_SECONDS)
    for outbox_id, error in report.errors.items():
        context.log.warning("notification %s not delivered: %s", outbox_id, error)
    return dg.SkipReason(f"notifications: {report.summary()}")

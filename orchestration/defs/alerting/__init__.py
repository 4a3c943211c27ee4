"""Alerting: the sensors that evaluate the alert rules, raise run-failure alerts and send
notifications (and, once a day, the digest of info notifications)."""

import dagster as dg

from orchestration.defs.alerting.digest import daily_digest_sensor
from orchestration.defs.alerting.sensors import (
    alert_rules_sensor,
    customer_health_alert_sensor,
    notification_outbox_sensor,
    run_failure_alert_sensor,
)

defs = dg.Definitions(
    sensors=[
        customer_health_alert_sensor,
        alert_rules_sensor,
        run_failure_alert_sensor,
        notification_outbox_sensor,
        daily_digest_sensor,
    ]
)

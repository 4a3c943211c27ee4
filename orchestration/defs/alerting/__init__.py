"""Alerting: rules over the marts, and the sensors that evaluate them and send notifications."""

import dagster as dg

from orchestration.defs.alerting.sensors import (
    customer_critical_alert_sensor,
    notification_outbox_sensor,
)

defs = dg.Definitions(sensors=[customer_critical_alert_sensor, notification_outbox_sensor])

"""The alerting domain's Dagster definitions: names, targets and intervals people rely on."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.alerting import defs
from orchestration.defs.alerting.sensors import CUSTOMER_HEALTH
from orchestration.defs.resources import shared_resources


def test_sensors_snapshot() -> None:
    merged = dg.Definitions.merge(defs, dg.Definitions(resources=shared_resources()))
    sensors = {s.name: s for s in merged.get_repository_def().sensor_defs}
    assert sorted(sensors) == [
        "alert_rules_sensor",
        "customer_health_alert_sensor",
        "daily_digest_sensor",
        "notification_outbox_sensor",
        "run_failure_alert_sensor",
    ]
    for name in (
        "alert_rules_sensor",
        "customer_health_alert_sensor",
        "notification_outbox_sensor",
    ):
        sensor = sensors[name]
        assert sensor.minimum_interval_seconds == 30
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
        assert sensor.required_resource_keys == {"warehouse"}
    assert sensors["run_failure_alert_sensor"].default_status == dg.DefaultSensorStatus.RUNNING
    assert sensors["daily_digest_sensor"].minimum_interval_seconds == 3600
    alert_sensor = sensors["customer_health_alert_sensor"]
    assert isinstance(alert_sensor, dg.AssetSensorDefinition)
    assert alert_sensor.asset_key == CUSTOMER_HEALTH == dg.AssetKey(["marts", "customer_health"])

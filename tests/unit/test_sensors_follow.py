"""The churn and recommendation sensors do not repeat work their upstream's run already did:
after `opsdash up`'s first build (train -> score -> recommend in one run) the daemon's first
ticks must not score a million customers again. A real (ephemeral) Dagster instance holds the
events; the sensors are evaluated as the daemon would, with a fresh cursor."""

from __future__ import annotations

from typing import Any

import dagster as dg

from orchestration.defs.churn.sensors import CHURN_MODEL, CHURN_SCORES, score_churn_after_promotion
from orchestration.defs.recommendations.assets import RECOMMENDATIONS
from orchestration.defs.recommendations.sensors import (
    TUTOR_PERFORMANCE,
    recommendations_after_churn_scores,
    recommendations_after_marts,
)
from orchestration.lib.sensors import followed_by


def _materialize(instance: dg.DagsterInstance, key: dg.AssetKey, **metadata: object) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, metadata=metadata))


def _evaluate(sensor: dg.AssetSensorDefinition, instance: dg.DagsterInstance) -> Any:
    """One tick with no cursor: what the daemon does when it first sees the sensor."""
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance))


def test_a_promotion_already_scored_in_its_run_asks_for_no_scoring() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        _materialize(instance, CHURN_MODEL, alias="champion", version="1")
        requests = _evaluate(score_churn_after_promotion, instance).run_requests or []
        assert len(requests) == 1  # not scored yet
        assert (requests[0].run_key or "").startswith("churn_champion_1_")

    with dg.DagsterInstance.ephemeral() as instance:
        _materialize(instance, CHURN_MODEL, alias="champion", version="1")
        _materialize(instance, CHURN_SCORES)  # the first build scored with it
        tick = _evaluate(score_churn_after_promotion, instance)
        assert not tick.run_requests
        assert "ml/churn_scores was already materialized after this event" in (
            tick.skip_message or ""
        )

    with dg.DagsterInstance.ephemeral() as instance:
        _materialize(instance, CHURN_SCORES)  # yesterday's scores
        _materialize(instance, CHURN_MODEL, alias="champion", version="2")  # then a promotion
        assert len(_evaluate(score_churn_after_promotion, instance).run_requests or []) == 1


def test_recommendations_follow_new_scores_and_marts_unless_a_pass_already_read_them() -> None:
    for sensor, upstream in (
        (recommendations_after_churn_scores, CHURN_SCORES),
        (recommendations_after_marts, TUTOR_PERFORMANCE),
    ):
        with dg.DagsterInstance.ephemeral() as instance:
            _materialize(instance, RECOMMENDATIONS)
            _materialize(instance, upstream)
            assert len(_evaluate(sensor, instance).run_requests or []) == 1, sensor.name
            _materialize(instance, RECOMMENDATIONS)  # the requested pass ran
            _materialize(instance, upstream)
            _materialize(instance, RECOMMENDATIONS)  # ... and another after the newest event
            assert not _evaluate(sensor, instance).run_requests, sensor.name


def test_followed_by_compares_the_downstream_with_the_event() -> None:
    def at(timestamp: float) -> dg.EventLogEntry:
        return dg.EventLogEntry(
            error_info=None, level="INFO", user_message="", run_id="r", timestamp=timestamp
        )

    assert followed_by(at(10.0), at(11.0))
    assert not followed_by(at(10.0), at(10.0))  # same instant: do the work rather than miss it
    assert not followed_by(at(10.0), at(9.0))
    assert not followed_by(at(10.0), None)

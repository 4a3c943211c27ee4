"""What the asset sensors share: whether the work a sensor would ask for has already been done.

A sensor that reacts to an upstream materialization (a promoted churn model, new churn scores,
rebuilt marts) runs a job that materializes the downstream asset. When the same run that
materialized the upstream went on to materialize the downstream too — `opsdash up`'s first
build scores with the model it has just trained and generates recommendations from those
scores — the sensor, which sees the upstream event only once the daemon starts, would repeat
that work: at a million customers a second scoring (~100 s) and three recommendation passes
beside the first cycles, for results identical to the ones just written.
"""

from __future__ import annotations

import dagster as dg


def followed_by(event: dg.EventLogEntry, downstream: dg.EventLogEntry | None) -> bool:
    """Whether `downstream` (the newest materialization of the asset the sensor would refresh)
    was written after `event`: it already read what `event` wrote."""
    return downstream is not None and downstream.timestamp > event.timestamp


def already_followed(
    context: dg.SensorEvaluationContext, event: dg.EventLogEntry, downstream: dg.AssetKey
) -> dg.SkipReason | None:
    """A SkipReason naming the run that already refreshed `downstream` after `event`, or None
    when the sensor should ask for the run."""
    latest = context.instance.get_latest_materialization_event(downstream)
    if latest is None or not followed_by(event, latest):
        return None
    return dg.SkipReason(
        f"{downstream.to_user_string()} was already materialized after this event "
        f"(run {latest.run_id[:8]})"
    )

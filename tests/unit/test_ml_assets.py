"""The churn assets as Dagster sees them, and the COPY encoding of the scores they write."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
from dagster._core.events import StepMaterializationData

from ml.scores_io import copy_text
from opsdash_core.settings import PROJECT_ROOT
from orchestration.defs.churn import defs
from orchestration.defs.churn.assets import ChurnMonitoringConfig
from orchestration.defs.churn.sensors import (
    cooling_down,
    drift_retraining_key,
    promoted_version,
    retrain_churn_on_drift,
    score_churn_after_promotion,
)
from orchestration.defs.resources import shared_resources


def test_asset_graph() -> None:
    full = dg.Definitions.merge(defs, dg.Definitions(resources=shared_resources()))
    graph = full.resolve_asset_graph()
    model = dg.AssetKey(["ml", "churn_model"])
    scores = dg.AssetKey(["ml", "churn_scores"])
    assert {model, scores} <= graph.get_all_asset_keys()
    reads = {
        dg.AssetKey(["intermediate", "int_sessions_deduplicated"]),
        dg.AssetKey(["staging", "stg_marketplace__customers"]),
        dg.AssetKey(["staging", "stg_support__inbound_calls"]),
    }
    assert graph.get(model).parent_keys == reads
    assert graph.get(scores).parent_keys == {model, *reads}
    monitoring = dg.AssetKey(["ml", "churn_monitoring"])
    assert graph.get(monitoring).parent_keys == {model, scores, *reads}
    for key in (model, scores, monitoring):
        assert graph.get(key).group_name == "churn"
        assert "Grain:" in (full.resolve_assets_def(key).descriptions_by_key[key] or "")


def test_copy_text_escapes_only_what_copy_needs() -> None:
    assert copy_text('{"a": "b"}') == '{"a": "b"}'
    assert copy_text('{"a": "tab\\there"}') == '{"a": "tab\\\\there"}'
    assert copy_text("x\ty\nz\r") == "x\\ty\\nz\\r"


def test_churn_code_location_imports_without_heavy_libraries() -> None:
    code = (
        "import sys, orchestration.defs.churn\n"
        "heavy = [m for m in ('mlflow', 'shap', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT, timeout=60)


def _materialization_event(
    metadata: dict[str, object], key: tuple[str, ...] = ("ml", "churn_model")
) -> dg.EventLogEntry:
    materialization = dg.AssetMaterialization(asset_key=list(key), metadata=metadata)
    event = dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.ASSET_MATERIALIZATION.value,
        job_name="train_churn_model",
        event_specific_data=StepMaterializationData(materialization),
    )
    return dg.EventLogEntry(
        error_info=None,
        level="INFO",
        user_message="",
        run_id="run-1",
        timestamp=0.0,
        dagster_event=event,
    )


def test_a_promotion_triggers_scoring_and_a_challenger_does_not() -> None:
    promoted = _materialization_event({"alias": "champion", "version": "7"})
    assert promoted_version(promoted) == "7"
    waiting = _materialization_event({"alias": "challenger", "version": "8"})
    assert promoted_version(waiting) is None
    assert promoted_version(_materialization_event({"version": "9"})) is None
    assert score_churn_after_promotion.job_name == "score_churn"


def test_drift_asks_for_one_retraining_per_day_and_no_drift_for_none() -> None:
    def monitored(metadata: dict[str, object]) -> dg.EventLogEntry:
        return _materialization_event(metadata, ("ml", "churn_monitoring"))

    drifted = monitored({"drifted_features": 2, "monitored_date": "2026-11-30"})
    assert drift_retraining_key(drifted) == "churn_drift_2026-11-30"
    assert drift_retraining_key(monitored({"drifted_features": 0})) is None
    assert drift_retraining_key(monitored({"monitored_date": "2026-11-30"})) is None
    assert retrain_churn_on_drift.job_name == "train_churn_model"
    day = 86_400.0
    assert cooling_down(trained_at=10 * day, monitored_at=11 * day)  # trained yesterday
    assert not cooling_down(trained_at=10 * day, monitored_at=14 * day)


def test_the_psi_threshold_defaults_to_the_library_alert_level() -> None:
    from ml.churn_drift import PSI_ALERT

    assert ChurnMonitoringConfig().psi_threshold == PSI_ALERT


def test_degraded_forecasts_ask_for_one_retraining_per_day() -> None:
    from orchestration.defs.forecasting.sensors import (
        degradation_retraining_key,
        retrain_forecast_on_degradation,
    )

    def monitored(metadata: dict[str, object]) -> dg.EventLogEntry:
        return _materialization_event(metadata, ("ml", "model_monitoring"))

    degraded = monitored({"day": "2026-11-29", "degraded_subjects": "algebra, chemistry"})
    assert degradation_retraining_key(degraded) == "forecast_degraded_2026-11-29"
    assert (
        degradation_retraining_key(monitored({"day": "2026-11-29", "degraded_subjects": "none"}))
        is None
    )
    assert degradation_retraining_key(monitored({"day": "2026-11-29"})) is None
    assert retrain_forecast_on_degradation.job_name == "retrain_demand_forecast"

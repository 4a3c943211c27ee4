"""ML cadence from the seed: retrain weekly (Sunday), score every active customer daily, and
monitor the serving model daily after scoring."""

import dagster as dg

from orchestration.lib.schedules import running_schedules

train_churn_job = dg.define_asset_job(
    "train_churn_model",
    selection=dg.AssetSelection.assets(dg.AssetKey(["ml", "churn_model"])),
    description="Retrain, evaluate and register the churn model (champion/challenger).",
)
score_churn_job = dg.define_asset_job(
    "score_churn",
    selection=dg.AssetSelection.assets(dg.AssetKey(["ml", "churn_scores"])),
    description="Churn probability and top-3 SHAP factors for every active customer.",
)

monitor_churn_job = dg.define_asset_job(
    "monitor_churn",
    selection=dg.AssetSelection.assets(dg.AssetKey(["ml", "churn_monitoring"])),
    description="Feature drift (PSI) of the churn champion and realized accuracy of past scores.",
)

SCHEDULES = running_schedules(train_churn_job, score_churn_job, monitor_churn_job)

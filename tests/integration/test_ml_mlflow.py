"""The churn model against a real MLflow server (temp dir, free port): registration, aliases,
promotion, rollback, loading the champion with its calibration and threshold, and the Dagster
churn assets end to end over the relations dbt builds (train, score, monitor: drift asks for
retraining, past scores get their realized accuracy)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import psycopg
import pytest

from ml.churn import ChurnParams, fit_churn_model, score
from ml.jobs import score_active_customers
from ml.registry import (
    MODEL_NAME,
    champion_version,
    load_champion,
    log_and_register,
    promote,
    rollback,
)
from orchestration.defs.churn.assets import churn_model, churn_monitoring, churn_scores
from orchestration.defs.churn.sensors import retrain_churn_on_drift
from orchestration.defs.resources import MlflowResource, WarehouseResource
from tests.integration.test_ml_features_sql import build_feature_relations

pytestmark = pytest.mark.integration


def synthetic(n: int = 2000) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(11)
    features = pd.DataFrame(
        {
            "days_since_last_session": rng.exponential(20, n),
            "sessions_per_week": rng.poisson(1.5, n).astype(float),
            "channel_referral": (rng.random(n) < 0.3).astype(float),
        },
        index=pd.Index(np.arange(1, n + 1), name="customer_id"),
    )
    logit = 0.1 * features["days_since_last_session"] - 1.2 * features["sessions_per_week"]
    labels = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), index=features.index)
    return features, labels


@dataclass(frozen=True)
class LoggedRun:
    artifacts: set[str]
    metrics: dict[str, float]
    params: dict[str, str]


def logged_run(uri: str, run_id: str) -> LoggedRun:
    """What a training run left in MLflow: its top-level artifact names, metrics, params."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(run_id)
    return LoggedRun(
        artifacts={Path(a.path).name for a in client.list_artifacts(run_id)},
        metrics=dict(run.data.metrics),
        params=dict(run.data.params),
    )


def aliases(uri: str, name: str) -> dict[str, str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return dict(client.get_registered_model(name).aliases)


def test_register_promote_rollback_and_load(mlflow_uri: str) -> None:
    name = f"churn_it_{uuid.uuid4().hex[:6]}"
    features, labels = synthetic()
    model = fit_churn_model(features, labels, ChurnParams())
    params = ChurnParams().as_dict()

    def register(alias: str) -> tuple[str, str]:
        result = log_and_register(
            model,
            {"roc_auc": 0.8, "brier": 0.1},
            params,
            mlflow_uri,
            alias=alias,  # type: ignore[arg-type]
            name=name,
            experiment="it",
            tables={"threshold_table": pd.DataFrame({"threshold": [0.5], "flagged": [3]})},
            input_example=model.align(features.head(3)),
        )
        return result.version, result.alias

    assert register("challenger") == ("1", "champion")  # the first version always serves
    assert register("champion") == ("2", "champion")
    assert aliases(mlflow_uri, name) == {"champion": "2", "previous_champion": "1"}
    assert register("challenger") == ("3", "challenger")
    assert aliases(mlflow_uri, name) == {
        "champion": "2",
        "previous_champion": "1",
        "challenger": "3",
    }

    assert promote(mlflow_uri, name, "3") == "3"
    assert aliases(mlflow_uri, name) == {"champion": "3", "previous_champion": "2"}
    assert rollback(mlflow_uri, name) == "2"
    assert aliases(mlflow_uri, name) == {"champion": "2", "previous_champion": "1"}
    assert rollback(mlflow_uri, name) == "1"
    assert aliases(mlflow_uri, name) == {"champion": "1"}
    with pytest.raises(LookupError):
        rollback(mlflow_uri, name)
    assert champion_version(mlflow_uri, name) == "1"

    loaded = load_champion(mlflow_uri, name)
    assert (loaded.name, loaded.version) == (name, "1")
    assert loaded.model.feature_names == model.feature_names
    assert loaded.model.calibration == model.calibration
    assert loaded.model.threshold == model.threshold
    pd.testing.assert_series_equal(score(loaded.model, features), score(model, features))


def seed_warehouse(url: str, customers: int = 1500) -> None:
    """Customers whose id is a multiple of 3 book every 9 days and stop between 20 and 160 days
    ago; the others book every 4 days up to two weeks ahead. At every cut-off, those already
    gone are told apart from those still coming."""
    with psycopg.connect(url) as conn:
        conn.execute(
            """
            insert into raw.customers (id, status, signed_up_at, goal_progress_pct,
                acquisition_channel, created_at, updated_at)
            select
                i, 'active', now() - interval '200 days' + (i %% 30) * interval '1 day',
                (i * 7) %% 100, (array['organic_search', 'paid_search', 'referral'])[1 + i %% 5 %% 3],
                now() - interval '200 days', now() - interval '200 days'
            from generate_series(1, %s) as i
            """,
            (customers,),
        )
        conn.execute(
            """
            insert into raw.sessions (id, customer_id, tutor_id, subject_id, scheduled_at,
                duration_minutes, status, rating, is_first_session, created_at, updated_at)
            select
                row_number() over (), c.id, 1 + (c.id + g) % 17, 1, t.at, 60,
                case when t.at > now() then 'scheduled' else 'completed' end,
                case when t.at <= now() then 1 + (c.id + g) % 5 end,
                g = 0, t.at, t.at
            from raw.customers as c
            cross join lateral generate_series(0, 60) as g
            cross join lateral (
                select c.signed_up_at
                    + g * (case when c.id % 3 = 0 then 9 else 4 end) * interval '1 day' as at
            ) as t
            where t.at < case
                when c.id % 3 = 0 then now() - interval '20 days' - (c.id * 7 % 140) * interval '1 day'
                else now() + interval '14 days'
            end
            """
        )


def test_churn_assets_end_to_end(mlflow_uri: str, warehouse_url: str, tmp_path: Path) -> None:
    seed_warehouse(warehouse_url)
    build_feature_relations(warehouse_url, tmp_path)
    resources = {
        "warehouse": WarehouseResource(url=warehouse_url),
        "mlflow": MlflowResource(tracking_uri=mlflow_uri),
    }
    result = dg.materialize([churn_model, churn_scores], resources=resources)
    assert result.success

    trained = result.asset_materializations_for_node("ml__churn_model")[0].metadata
    assert trained["auc"].value > 0.75
    assert trained["brier"].value < trained["brier_base_rate"].value
    assert trained["kind"].value in {"logreg", "hgb"}
    assert trained["alias"].value == "champion"
    assert trained["horizon_days"].value == 60
    assert trained["out_of_time"].value is True
    version = trained["version"].value
    run = logged_run(mlflow_uri, trained["run_id"].value)
    # what the model page shows beside the model
    assert {"shap_summary.png", "reliability_curve.png", "threshold_table.csv"} <= run.artifacts
    # the bars it must clear, on the same holdout rows: recency alone and an RFM regression
    assert 0.5 < run.metrics["baseline_recency_auc"] < run.metrics["roc_auc"] + 0.01
    assert run.metrics["gain_vs_rfm_lower"] <= run.metrics["gain_vs_rfm"]
    # no customer changed after any cut-off: goal progress as it was is today's, and used
    assert run.params["history_features"] == "goal_progress_pct"
    assert "goal_progress_pct" in run.params["features"].split(",")

    # Retrained on the same data, the new version is no better on the same holdout rows: it
    # waits as challenger and scoring keeps using the champion.
    again = dg.materialize([churn_model], resources=resources)
    retrained = again.asset_materializations_for_node("ml__churn_model")[0].metadata
    assert retrained["alias"].value == "challenger"
    assert retrained["auc_gain_vs_champion"].value < 0.005
    scored = result.asset_materializations_for_node("ml__churn_scores")[0].metadata
    assert scored["rows"].value == 1500
    assert scored["model_version"].value == version

    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "select count(*), count(distinct scored_at), min(model_name), min(model_version),"
            " min(jsonb_array_length(top_factors)), max(jsonb_array_length(top_factors))"
            " from ml.churn_scores"
        ).fetchone()
        assert rows == (1500, 1, MODEL_NAME, version, 3, 3)
        churners, others = conn.execute(
            "select avg(churn_probability) filter (where customer_id % 3 = 0),"
            " avg(churn_probability) filter (where customer_id % 3 <> 0) from ml.churn_scores"
        ).fetchone()
        assert churners > others + 0.3
        first = conn.execute(
            "select top_factors -> 0 from ml.churn_scores where customer_id = 3"
        ).fetchone()[0]
        assert set(first) == {"feature", "label", "value", "shap", "direction", "reason", "action"}

        # Scores of 90 days ago, whose 60-day outcome is known by now; then every customer
        # calls support three times this week, which no training customer ever did.
        past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=90)
        score_active_customers(conn, mlflow_uri, past)
        conn.execute(
            "insert into raw.inbound_calls (id, customer_id, reason_code, called_at, created_at,"
            " updated_at) select n, n % 1500 + 1, 'billing', now() - n * interval '1 minute',"
            " now(), now() from generate_series(1, 4500) as n"
        )
        conn.commit()
    instance = dg.DagsterInstance.ephemeral()
    monitored = dg.materialize([churn_monitoring], resources=resources, instance=instance)
    assert monitored.success
    meta = monitored.asset_materializations_for_node("ml__churn_monitoring")[0].metadata
    assert "support_calls_30d" in meta["drifted"].value.split(", ")
    assert meta["reference"].value == "holdout sample"
    (request,) = retrain_churn_on_drift.evaluate_tick(
        dg.build_sensor_context(instance=instance)
    ).run_requests
    assert request.run_key == f"churn_drift_{meta['monitored_date'].value}"
    assert retrain_churn_on_drift.job_name == "train_churn_model"
    with psycopg.connect(warehouse_url) as conn:
        drift = {
            row[0]: row[1:]
            for row in conn.execute(
                "select feature, is_drifted, threshold, model_version, monitored_date"
                " from ml.churn_drift"
            )
        }
        monitored_date = meta["monitored_date"].value
        assert drift["support_calls_30d"] == (
            True,
            0.2,
            version,
            date.fromisoformat(monitored_date),
        )
        assert len(drift) == meta["features"].value > 10
        # Only the day whose outcome window has closed: not today's scores.
        (realized,) = conn.execute(
            "select scored_date, model_version, customers, churned, roc_auc, recall, precision,"
            " threshold from ml.churn_accuracy"
        ).fetchall()
        assert realized[:3] == (past.date(), version, 1500)
        assert 0 < realized[3] < 1500
        assert realized[4] > 0.75
        assert realized[5] > 0  # recall at the threshold the version scored with
        assert realized[7] == pytest.approx(load_champion(mlflow_uri).model.threshold)
        # ...and both histories read as one, from the model's role as from the app's
        for role in ("opsdash_ml", "opsdash_app"):
            conn.execute(f"set role {role}")
            monitoring = conn.execute(
                "select metric_kind, feature, value, threshold, is_drifted, metric_date"
                " from ml.churn_monitoring where model_version = %s",
                (version,),
            ).fetchall()
            conn.execute("reset role")
            kinds = {row[0] for row in monitoring}
            assert kinds == {
                "feature_drift_psi",
                "realized_roc_auc",
                "realized_recall",
                "realized_precision",
            }
            (calls,) = [r for r in monitoring if r[1] == "support_calls_30d"]
            assert calls[3:5] == (0.2, True)
            assert calls[2] > 0.2
            (auc,) = [r for r in monitoring if r[0] == "realized_roc_auc"]
            assert auc[2] == realized[4]
            assert auc[5] == past.date()

    with psycopg.connect(warehouse_url) as conn:
        # Rescoring with the same timestamp replaces that run instead of adding to it, and
        # features loaded in shards side by side (what the asset does) score the same.
        at = datetime(2030, 1, 1, tzinfo=UTC)
        for connect in (None, lambda: psycopg.connect(warehouse_url)):
            outcome = score_active_customers(conn, mlflow_uri, at, connect=connect)
            conn.commit()
            scores = conn.execute(
                "select customer_id, churn_probability from ml.churn_scores"
                " where scored_at = %s order by customer_id",
                (at,),
            ).fetchall()
            if connect is None:
                unsharded = scores
        assert scores == unsharded
        assert outcome.rows == 1500
        count = conn.execute(
            "select count(*) from ml.churn_scores where scored_at = %s", (at,)
        ).fetchone()[0]
        assert count == 1500

"""Forecasting runs in MLflow: parameters, per-subject metrics, the backtest table, one
forecast-vs-actual plot per subject, the chosen model per subject, and the registered model
`demand_forecast` (one version = one set of per-subject choices with their backtest
metrics and calibrated interval quantiles, stored as plain CSV/JSON files, no pickles).

Promotion gate: the new version becomes `champion` only when its served backtest MASE,
averaged over subjects, beats the champion's choices scored on the *same* origins (the new
backtest holds every model's MASE per subject) by at least `MASE_MARGIN` (relative);
otherwise it becomes `challenger`. Aliases, history and rollback are `ml.registry`'s, so
`opsdash models promote|rollback --name demand_forecast` works for it.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ml.forecasting.forecast import ForecastRun
from ml.forecasting.intervals import fit_quantiles

MODEL_NAME = "demand_forecast"
EXPERIMENT = "demand_forecast"
# A new set of choices must lower the mean backtest MASE by at least 2% to replace the champion.
MASE_MARGIN = 0.02
CHOICES_FILE = "choices.csv"


def gate(candidate_mase: float, champion_mase: float | None, margin: float = MASE_MARGIN) -> str:
    """`champion` when there is none or the candidate beats it by the margin, else
    `challenger`."""
    if champion_mase is None or champion_mase != champion_mase:
        return "champion"
    if candidate_mase != candidate_mase:
        return "challenger"
    return "champion" if candidate_mase <= champion_mase * (1 - margin) else "challenger"


def same_origin_mase(ranking: pd.DataFrame, choices: dict[str, str]) -> tuple[float, float]:
    """(candidate, champion) mean MASE over the subjects both can be scored on, at the new
    backtest's origins. `choices` is the champion's subject -> model."""
    served = ranking[ranking["rank"] == 1].set_index("unique_id")["mase"]
    table = ranking.set_index(["unique_id", "model"])["mase"]
    pairs = [
        (served[uid], table[(uid, model)])
        for uid, model in choices.items()
        if uid in served.index and (uid, model) in table.index
    ]
    if not pairs:
        return float("nan"), float("nan")
    frame = pd.DataFrame(pairs, columns=["candidate", "champion"])
    return float(frame["candidate"].mean()), float(frame["champion"].mean())


def log_run(
    run: ForecastRun,
    history: pd.DataFrame,
    tracking_uri: str,
    run_id: str,
    as_of: datetime,
    plots: bool = True,
) -> dict[str, str]:
    """Log the run and register a new version; returns version, alias and MLflow run id."""
    import mlflow

    from ml.registry import promote, registry_client, tracking_context

    client = registry_client(tracking_uri)
    champion_choices = _champion_choices(client, tracking_uri)
    ranked = run.ranking
    served = run.choices[run.choices["rank"].notna()]
    with tracking_context(tracking_uri), tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        found = client.get_experiment_by_name(EXPERIMENT)
        experiment_id = found.experiment_id if found else client.create_experiment(EXPERIMENT)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_id) as active:
            mlflow.log_params(
                {
                    "forecast_run_id": run_id,
                    "as_of": as_of.isoformat(),
                    "subjects": int(run.choices["unique_id"].nunique()),
                    "origins": len(run.backtest.origins) if run.backtest else 0,
                    "horizon_hours": 168,
                    "models": ",".join(sorted(ranked["model"].unique())),
                    "mase_margin": MASE_MARGIN,
                }
            )
            mlflow.log_metrics(_metrics(run))
            selection = folder / "selection"
            selection.mkdir()
            run.choices.to_csv(selection / CHOICES_FILE, index=False)
            ranked.to_csv(selection / "ranking.csv", index=False)
            if run.backtest is not None:
                run.backtest.metrics.to_csv(folder / "backtest.csv", index=False)
                errors = run.backtest.errors.merge(
                    served[["unique_id", "model"]], on=["unique_id", "model"]
                )
                fit_quantiles(errors).to_csv(selection / "interval_quantiles.csv", index=False)
                mlflow.log_artifact(str(folder / "backtest.csv"))
            (selection / "README.json").write_text(
                json.dumps({"format": "demand_forecast choices v1", "run_id": run_id})
            )
            mlflow.log_artifacts(str(selection), artifact_path="selection")
            if plots:
                for path in _plots(run, history, folder / "plots"):
                    mlflow.log_artifact(str(path), artifact_path="plots")
            candidate, champion = same_origin_mase(ranked, champion_choices)
            if not champion_choices:
                candidate = float(served["mase"].astype(float).mean())
            mlflow.log_metrics({"gate_candidate_mase": candidate})
            if champion == champion:
                mlflow.log_metric("gate_champion_mase", champion)
            mlflow_run_id = active.info.run_id
    if not _exists(client):
        client.create_registered_model(MODEL_NAME)
    version = client.create_model_version(
        MODEL_NAME, f"runs:/{mlflow_run_id}/selection", run_id=mlflow_run_id
    ).version
    client.set_model_version_tag(MODEL_NAME, version, "mase", str(candidate))
    alias = gate(candidate, champion if champion_choices else None)
    if alias == "champion":
        promote(tracking_uri, MODEL_NAME, str(version))
    else:
        client.set_registered_model_alias(MODEL_NAME, "challenger", str(version))
    return {"version": str(version), "alias": alias, "mlflow_run_id": mlflow_run_id}


def _metrics(run: ForecastRun) -> dict[str, float]:
    out: dict[str, float] = {}
    for row in run.choices.itertuples(index=False):
        for name in ("mase", "coverage"):
            value = getattr(row, name)
            if value is not None and value == value:
                out[f"{name}.subject_{row.unique_id}"] = float(value)
    if run.backtest is not None:
        means = run.backtest.metrics.groupby(["unique_id", "model"])[["mae", "wmape"]].mean()
        summary: dict[Any, Any] = means.to_dict("index")
        for row in run.choices.itertuples(index=False):
            if (row.unique_id, row.model) in summary:
                mae = summary[(row.unique_id, row.model)]["mae"]
                wmape = summary[(row.unique_id, row.model)]["wmape"]
                out[f"mae.subject_{row.unique_id}"] = float(mae)
                if wmape == wmape:
                    out[f"wmape.subject_{row.unique_id}"] = float(wmape)
        out.update(_coverage_by_day(run))
    served = run.choices["mase"].astype(float)
    if served.notna().any():
        out["mase_mean"] = float(served.mean())
    return out


def _coverage_by_day(run: ForecastRun) -> dict[str, float]:
    """Calibrated coverage of the served models by day of the horizon (leave one origin
    out), pooled over subjects."""
    from ml.forecasting.intervals import leave_one_origin_out

    if run.backtest is None:
        return {}
    served = run.choices[["unique_id", "model"]]
    errors = run.backtest.errors.merge(served, on=["unique_id", "model"])
    out = {}
    for day in range(7):
        part = errors[(errors["step"] - 1) // 24 == day]
        if part.empty:
            continue
        value = leave_one_origin_out(part)["calibrated_coverage"].mean()
        if value == value:
            out[f"coverage_day_{day + 1}"] = float(value)
    return out


def _plots(run: ForecastRun, history: pd.DataFrame, folder: Path) -> list[Path]:
    """Per subject: the last two weeks of demand, the last backtest week's served forecast
    against what happened, and the next week's forecast with its 95% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    errors = run.backtest.errors if run.backtest is not None else pd.DataFrame()
    last_fold = 1
    for uid, future in run.forecast.groupby("unique_id"):
        fig, ax = plt.subplots(figsize=(10, 3.2))
        past = history[history["unique_id"] == uid].tail(14 * 24)
        ax.plot(past["ds"], past["y"], color="black", linewidth=0.8, label="actual")
        model = str(future["model"].iloc[0])
        if not errors.empty:
            week = errors[
                (errors["unique_id"] == uid)
                & (errors["model"] == model)
                & (errors["fold"] == last_fold)
            ]
            ax.plot(week["ds"], week["yhat"], color="tab:orange", linewidth=0.8, label="backtest")
        ax.plot(future["ds"], future["yhat"], color="tab:blue", linewidth=0.9, label=model)
        ax.fill_between(
            future["ds"], future["yhat_lower"], future["yhat_upper"], alpha=0.25, label="95%"
        )
        ax.set_title(f"subject {uid}: {model}")
        ax.legend(loc="upper left", fontsize=7)
        path = folder / f"subject_{uid}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


def _exists(client: object) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(MODEL_NAME)  # type: ignore[attr-defined]
    except MlflowException:
        return False
    return True


def _champion_choices(client: object, tracking_uri: str) -> dict[str, str]:
    """The champion version's subject -> model, {} when there is no champion."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(MODEL_NAME, "champion")  # type: ignore[attr-defined]
    except MlflowException:
        return {}
    import mlflow.artifacts

    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"runs:/{version.run_id}/selection/{CHOICES_FILE}",
        tracking_uri=tracking_uri,
    )
    frame = pd.read_csv(local, dtype={"unique_id": str})
    return dict(zip(frame["unique_id"], frame["model"], strict=True))

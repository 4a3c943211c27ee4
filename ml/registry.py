"""The churn model in the MLflow registry: log, register, pick an alias, promote, roll back.

Every function takes the tracking URI as an argument. Aliases, not stages:
- `champion` is what scoring loads;
- `challenger` is a newer version that did not beat the champion: the caller decides, with a
  paired comparison on the same holdout rows (`ml.churn_metrics.paired_auc_gain`), so a model
  that is not clearly better never replaces the champion;
- `previous_champion` is the version a rollback would restore.
The full order in which versions became champion is kept in the registered-model tag
`champion_history` (a JSON list of versions), so repeated rollbacks walk back in time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Literal

from ml.churn import Calibration, ChurnModel

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

MODEL_NAME = "churn_logreg"
EXPERIMENT = "churn"
CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"
PREVIOUS_CHAMPION = "previous_champion"
HISTORY_TAG = "champion_history"
# A random sample of the population each version was last fitted on (its out-of-time holdout,
# on which it was calibrated and its threshold chosen), model columns, logged as
# `<REFERENCE_SAMPLE>.csv`: the distribution drift monitoring compares today's with.
REFERENCE_SAMPLE = "reference_sample"
# Types inside the pipelines that skops does not trust by default (the imputer's fitted dtype,
# the gradient-boosting challenger's trees).
SKOPS_TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]
# Version tags that carry what scoring needs beside the pipeline.
SCORING_TAGS = ("calibration_slope", "calibration_intercept", "threshold")

Alias = Literal["champion", "challenger"]


@dataclass(frozen=True)
class Registration:
    """What log_and_register did: the new version, the alias it got, and its run."""

    version: str
    alias: Alias
    run_id: str
    champion_auc: float | None


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version ready to score."""

    model: ChurnModel
    name: str
    version: str


def history_after_promote(history: list[str], current: str | None, version: str) -> list[str]:
    """The champion history once `version` becomes champion (current champion = `current`)."""
    history = list(history)
    if current is not None and (not history or history[-1] != current):
        history.append(current)
    if not history or history[-1] != version:
        history.append(version)
    return history


def history_after_rollback(history: list[str], current: str) -> tuple[str, list[str]]:
    """(version to restore, new history) when rolling back from `current`.

    Raises LookupError when there is nothing earlier to go back to."""
    history = list(history)
    while history and history[-1] == current:
        history.pop()
    if not history:
        raise LookupError(f"no earlier champion than version {current} to roll back to")
    return history[-1], history


def log_and_register(
    model: ChurnModel,
    metrics: Mapping[str, float],
    params: Mapping[str, object],
    tracking_uri: str,
    alias: Alias,
    name: str = MODEL_NAME,
    experiment: str = EXPERIMENT,
    tables: Mapping[str, pd.DataFrame] | None = None,
    figures: Mapping[str, object] | None = None,
    input_example: pd.DataFrame | None = None,
    champion_auc: float | None = None,
) -> Registration:
    """Log a run (params, metrics, tables as CSV, matplotlib figures as PNG, the sklearn
    pipeline with its signature and an input example), register it as a new version of `name`
    with its calibration and threshold as version tags, and give it `alias` (decided by the
    caller). There being no champion at all makes the new version champion."""
    _quiet()
    import mlflow
    import mlflow.sklearn

    with tracking_context(tracking_uri):
        client = registry_client(tracking_uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_params(dict(params))
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})
            for table_name, table in (tables or {}).items():
                mlflow.log_text(table.to_csv(index=False), f"{table_name}.csv")
            for figure_name, figure in (figures or {}).items():
                mlflow.log_figure(figure, f"{figure_name}.png")
            info = mlflow.sklearn.log_model(
                model.pipeline,
                name="model",
                registered_model_name=name,
                signature=_signature(model),
                input_example=input_example,
                pip_requirements=_pip_requirements(),
                pyfunc_predict_fn="predict_proba",
                serialization_format="skops",  # no pickle: loading runs no arbitrary code
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
            )
        version = str(info.registered_model_version)
        tags = {
            "roc_auc": str(float(metrics.get("roc_auc", float("nan")))),
            "calibration_slope": repr(model.calibration.slope),
            "calibration_intercept": repr(model.calibration.intercept),
            "threshold": repr(model.threshold),
            "kind": model.kind,
        }
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        if _alias_version(client, name, CHAMPION) is None:
            alias = "champion"  # the first version always serves
        if alias == CHAMPION:
            _promote(client, name, version)
        else:
            client.set_registered_model_alias(name, CHALLENGER, version)
    return Registration(
        version=version, alias=alias, run_id=run.info.run_id, champion_auc=champion_auc
    )


def load_champion(tracking_uri: str, name: str = MODEL_NAME) -> LoadedModel:
    """The version under the `champion` alias, loaded as a ChurnModel with the calibration
    and threshold it was registered with (none for a version registered before they were)."""
    _quiet()
    from ml.safe_load import load_trusted_sklearn

    with tracking_context(tracking_uri):
        client = registry_client(tracking_uri)
        found = client.get_model_version_by_alias(name, CHAMPION)
        version = found.version
        # Load by number, not alias, so the version we report is the one we scored with.
        # Never mlflow.sklearn.load_model: it would unpickle whatever anyone registered.
        pipeline = load_trusted_sklearn(f"models:/{name}/{version}", SKOPS_TRUSTED_TYPES)
    tags = found.tags or {}
    calibration = Calibration(
        slope=float(tags.get("calibration_slope", 1.0)),
        intercept=float(tags.get("calibration_intercept", 0.0)),
    )
    model = ChurnModel.from_pipeline(
        pipeline, calibration=calibration, threshold=float(tags.get("threshold", 0.5))
    )
    return LoadedModel(model=model, name=name, version=str(version))


@dataclass(frozen=True)
class DriftReference:
    """What drift monitoring compares a version with: the reference sample logged with it
    (None for a version logged before samples were), and the run's holdout cut-off, whose
    population the sample was drawn from (None when the run did not record one)."""

    sample: pd.DataFrame | None
    valid_cutoff: datetime | None


def drift_reference(tracking_uri: str, version: str, name: str = MODEL_NAME) -> DriftReference:
    """The reference sample and holdout cut-off of `version`'s run."""
    import tempfile

    import pandas as pd
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    client = registry_client(tracking_uri)
    run_id = client.get_model_version(name, str(version)).run_id
    cutoff = client.get_run(run_id).data.params.get("valid_cutoff") if run_id else None
    sample = None
    if run_id:
        with tempfile.TemporaryDirectory(prefix="churn_reference_") as tmp:
            try:
                path = download_artifacts(
                    run_id=run_id,
                    artifact_path=f"{REFERENCE_SAMPLE}.csv",
                    dst_path=tmp,
                    tracking_uri=tracking_uri,
                )
            except (MlflowException, OSError):  # logged before reference samples were
                path = None
            if path is not None:
                sample = pd.read_csv(path)
    return DriftReference(
        sample=sample, valid_cutoff=datetime.fromisoformat(cutoff) if cutoff else None
    )


def version_threshold(tracking_uri: str, version: str, name: str = MODEL_NAME) -> float | None:
    """The decision threshold `version` was registered with (None when unknown)."""
    from mlflow.exceptions import MlflowException

    try:
        tags = registry_client(tracking_uri).get_model_version(name, str(version)).tags or {}
    except MlflowException:  # the version was deleted from the registry
        return None
    threshold = tags.get("threshold")
    return float(threshold) if threshold is not None else None


def champion_version(tracking_uri: str, name: str = MODEL_NAME) -> str | None:
    """The version number under `champion`, or None."""
    client = registry_client(tracking_uri)
    return _alias_version(client, name, CHAMPION)


def promote(tracking_uri: str, name: str, version: str) -> str:
    """Make `version` the champion; the old champion becomes `previous_champion`."""
    client = registry_client(tracking_uri)
    client.get_model_version(name, str(version))  # fails clearly on an unknown version
    _promote(client, name, str(version))
    return str(version)


def rollback(tracking_uri: str, name: str = MODEL_NAME) -> str:
    """Give `champion` back to the version that held it before; returns that version."""
    client = registry_client(tracking_uri)
    current = _alias_version(client, name, CHAMPION)
    if current is None:
        raise LookupError(f"model {name} has no champion to roll back")
    history = _history(client, name)
    if not history:
        previous = _alias_version(client, name, PREVIOUS_CHAMPION)
        history = [previous, current] if previous else [current]
    target, history = history_after_rollback(history, current)
    client.set_registered_model_alias(name, CHAMPION, target)
    _set_previous(client, name, history[-2] if len(history) > 1 else None)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    client.set_model_version_tag(
        name, current, "rolled_back_at", datetime.now(UTC).isoformat(timespec="seconds")
    )
    return target


def _promote(client: MlflowClient, name: str, version: str) -> None:
    current = _alias_version(client, name, CHAMPION)
    if current == version:
        return
    history = history_after_promote(_history(client, name), current, version)
    client.set_registered_model_alias(name, CHAMPION, version)
    _set_previous(client, name, current)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    if _alias_version(client, name, CHALLENGER) == version:
        client.delete_registered_model_alias(name, CHALLENGER)


def _set_previous(client: MlflowClient, name: str, version: str | None) -> None:
    if version is not None:
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, version)
    elif _alias_version(client, name, PREVIOUS_CHAMPION) is not None:
        client.delete_registered_model_alias(name, PREVIOUS_CHAMPION)


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:  # no such model or no such alias
        return None


def _history(client: MlflowClient, name: str) -> list[str]:
    raw = client.get_registered_model(name).tags.get(HISTORY_TAG)
    return [str(v) for v in json.loads(raw)] if raw else []


def _signature(model: ChurnModel) -> object:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec("double", n) for n in model.feature_names]))


def _pip_requirements() -> list[str]:
    """Pinned to what trained the model; inferring them costs ~8 s per log."""
    from importlib.metadata import version

    return [
        f"{package}=={version(package)}"
        for package in ("scikit-learn", "numpy", "pandas", "scipy", "skops")
    ]


def _quiet() -> None:
    """No usage telemetry from MLflow (set before its first import), and no copy of whatever
    uv project happens to be the working directory inside each model: the model's
    requirements are the pinned pip_requirements."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def registry_client(tracking_uri: str) -> MlflowClient:
    _quiet()
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def tracking_context(tracking_uri: str) -> Iterator[None]:
    """The fluent API (start_run, log_model, models:/ URIs) reads a process-wide URI; set it
    only for the duration of one call and put the previous one back."""
    _quiet()
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    # The module globals, not the resolved getters: restoring a resolved default would pin the
    # registry to this call's server for every later caller that sets only a tracking URI.
    previous_tracking = tracking_utils._tracking_uri
    previous_registry = registry_utils._registry_uri
    # set_tracking_uri also writes these variables, which child processes would inherit.
    saved_env = {k: os.environ.get(k) for k in _URI_VARIABLES}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        tracking_utils._tracking_uri = previous_tracking
        registry_utils._registry_uri = previous_registry
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

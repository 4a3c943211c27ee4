"""The churn model in the MLflow registry: log, register, pick an alias, promote, roll back.

Every function takes the tracking URI as an argument. Aliases, not stages:
- `champion` is what scoring loads;
- `challenger` is a newer version that scored clearly worse than the champion;
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
from typing import TYPE_CHECKING, Literal

from ml.churn import ChurnModel

if TYPE_CHECKING:
    from mlflow import MlflowClient

MODEL_NAME = "churn_logreg"
EXPERIMENT = "churn"
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"
HISTORY_TAG = "champion_history"
# A new model becomes champion unless its validation AUC is worse by more than this.
AUC_TOLERANCE = 0.01

# Types inside the pipeline that skops does not trust by default (the imputer's fitted dtype).
SKOPS_TRUSTED_TYPES = ["numpy.dtype"]

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


def choose_alias(
    candidate_auc: float, champion_auc: float | None, tolerance: float = AUC_TOLERANCE
) -> Alias:
    """Champion when there is none (or its AUC is unknown), or when the candidate is not
    worse than it by more than `tolerance`; otherwise challenger. An unknown candidate AUC
    never replaces a champion."""
    if champion_auc is None or champion_auc != champion_auc:  # None or NaN
        return CHAMPION
    if candidate_auc != candidate_auc:
        return CHALLENGER
    return CHAMPION if candidate_auc >= champion_auc - tolerance else CHALLENGER


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
    name: str = MODEL_NAME,
    experiment: str = EXPERIMENT,
) -> Registration:
    """Log a run (params, metrics, the sklearn pipeline), register it as a new version of
    `name` and give it `champion` or `challenger` per `choose_alias` on `metrics['roc_auc']`."""
    _quiet()
    import mlflow
    import mlflow.sklearn

    with _tracking(tracking_uri):
        client = _client(tracking_uri)
        champion = _alias_version(client, name, CHAMPION)
        champion_auc = _version_auc(client, name, champion) if champion else None

        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_params(dict(params))
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            info = mlflow.sklearn.log_model(
                model.pipeline,
                name="model",
                registered_model_name=name,
                signature=_signature(model),
                pip_requirements=_pip_requirements(),
                pyfunc_predict_fn="predict_proba",
                serialization_format="skops",  # no pickle: loading runs no arbitrary code
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
            )
        version = str(info.registered_model_version)
        auc = float(metrics.get("roc_auc", float("nan")))
        client.set_model_version_tag(name, version, "roc_auc", str(auc))
        alias = choose_alias(auc, champion_auc)
        if alias == CHAMPION:
            _promote(client, name, version)
        else:
            client.set_registered_model_alias(name, CHALLENGER, version)
    return Registration(
        version=version, alias=alias, run_id=run.info.run_id, champion_auc=champion_auc
    )


def load_champion(tracking_uri: str, name: str = MODEL_NAME) -> LoadedModel:
    """The version under the `champion` alias, loaded as a ChurnModel."""
    _quiet()
    import mlflow
    import mlflow.sklearn

    with _tracking(tracking_uri):
        client = _client(tracking_uri)
        version = client.get_model_version_by_alias(name, CHAMPION).version
        # Load by number, not alias, so the version we report is the one we scored with.
        pipeline = mlflow.sklearn.load_model(f"models:/{name}/{version}")
    return LoadedModel(model=ChurnModel.from_pipeline(pipeline), name=name, version=str(version))


def champion_version(tracking_uri: str, name: str = MODEL_NAME) -> str | None:
    """The version number under `champion`, or None."""
    client = _client(tracking_uri)
    return _alias_version(client, name, CHAMPION)


def promote(tracking_uri: str, name: str, version: str) -> str:
    """Make `version` the champion; the old champion becomes `previous_champion`."""
    client = _client(tracking_uri)
    client.get_model_version(name, str(version))  # fails clearly on an unknown version
    _promote(client, name, str(version))
    return str(version)


def rollback(tracking_uri: str, name: str = MODEL_NAME) -> str:
    """Give `champion` back to the version that held it before; returns that version."""
    client = _client(tracking_uri)
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


def _version_auc(client: MlflowClient, name: str, version: str) -> float | None:
    """The validation AUC a version was registered with (version tag, else its run)."""
    model_version = client.get_model_version(name, version)
    tagged = model_version.tags.get("roc_auc")
    if tagged is not None:
        return float(tagged)
    if model_version.run_id:
        value = client.get_run(model_version.run_id).data.metrics.get("roc_auc")
        return float(value) if value is not None else None
    return None


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


def _client(tracking_uri: str) -> MlflowClient:
    _quiet()
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def _tracking(tracking_uri: str) -> Iterator[None]:
    """The fluent API (start_run, log_model, models:/ URIs) reads a process-wide URI; set it
    only for the duration of one call and put the previous one back."""
    _quiet()
    import mlflow

    previous_tracking = mlflow.get_tracking_uri()
    previous_registry = mlflow.get_registry_uri()
    # set_tracking_uri also writes these variables, which child processes would inherit.
    saved_env = {k: os.environ.get(k) for k in _URI_VARIABLES}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous_tracking)
        mlflow.set_registry_uri(previous_registry)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

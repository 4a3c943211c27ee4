"""Load a registered scikit-learn model without running code that came with it.

`mlflow.sklearn.load_model` honours whatever the model's own `MLmodel` file declares: a pickle
or cloudpickle artifact (unpickling runs arbitrary code), a skops artifact with the model's own
list of "trusted" types, and `code` paths put on `sys.path`. The MLflow server has no
authentication by default, so anyone on the host can register such a model and move the
`champion` alias; the next scoring run would execute their code.

So the model directory is downloaded and read here instead: the sklearn flavor must say
`serialization_format: skops`, and the artifact is loaded with `skops.io.load` trusting only
skops' defaults plus the project's own allow-list (never the list stored with the model).
Nothing from the model directory is imported. Anything else raises `UntrustedModelError`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class UntrustedModelError(RuntimeError):
    """The registered model could run foreign code when loaded, so it was not loaded."""


def check_flavor(mlmodel: dict[str, Any], model_uri: str) -> str:
    """The artifact path inside the model directory if the sklearn flavor is skops, else raise."""
    flavor = (mlmodel.get("flavors") or {}).get("sklearn")
    if not isinstance(flavor, dict):
        raise UntrustedModelError(
            f"{model_uri} has no sklearn flavor; only skops-serialized sklearn models are loaded"
        )
    fmt = flavor.get("serialization_format", "pickle")
    if fmt != "skops":
        raise UntrustedModelError(
            f"{model_uri} is serialized with {fmt!r}; loading it could run arbitrary code, so it "
            "was refused. Only skops-serialized models are loaded: retrain (`opsdash models "
            "train`) or move the alias back (`opsdash models rollback`)."
        )
    artifact = flavor.get("pickled_model")
    if not isinstance(artifact, str) or not artifact:
        raise UntrustedModelError(f"{model_uri}: the sklearn flavor names no model file")
    return artifact


def load_skops_file(path: Path, trusted_types: Sequence[str], model_uri: str) -> Any:
    """skops.io.load trusting only its defaults plus `trusted_types`."""
    import skops.io

    try:
        untrusted = set(skops.io.get_untrusted_types(file=path))
    except Exception as exc:  # not a skops archive at all (e.g. a pickle renamed .skops)
        raise UntrustedModelError(f"{model_uri}: not a readable skops file ({exc})") from exc
    extra = sorted(untrusted - set(trusted_types))
    if extra:
        raise UntrustedModelError(
            f"{model_uri} needs types outside the project's allow-list to load: {extra}; refused"
        )
    return skops.io.load(path, trusted=list(trusted_types))


def load_trusted_sklearn(model_uri: str, trusted_types: Sequence[str]) -> Any:
    """The sklearn object behind `model_uri` (e.g. `models:/name/3`), loaded without running
    code from the model. The caller sets the tracking/registry URI (see ml.registry)."""
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    with tempfile.TemporaryDirectory(prefix="opsdash-model-") as tmp:
        root = Path(download_artifacts(artifact_uri=model_uri, dst_path=tmp)).resolve()
        mlmodel_file = root / "MLmodel"
        if not mlmodel_file.is_file():
            raise UntrustedModelError(f"{model_uri} has no MLmodel file")
        flavors = Model.load(str(mlmodel_file)).flavors  # YAML read with safe_load
        artifact = (root / check_flavor({"flavors": flavors}, model_uri)).resolve()
        if not artifact.is_relative_to(root) or not artifact.is_file():
            raise UntrustedModelError(f"{model_uri}: model file {artifact.name!r} is not inside it")
        return load_skops_file(artifact, trusted_types, model_uri)

"""Model loading runs no foreign code: only a skops sklearn flavor loads, trusting skops'
defaults plus the project's allow-list, never what the model declares about itself."""

from __future__ import annotations

import pickle
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import skops.io
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from ml.safe_load import UntrustedModelError, check_flavor, load_skops_file

ALLOW = ["numpy.dtype"]  # what ml.registry.SKOPS_TRUSTED_TYPES holds for the churn pipeline


def _pipeline() -> object:
    x = np.array([[1.0], [2.0], [np.nan], [4.0]])
    return make_pipeline(SimpleImputer(), LogisticRegression()).fit(x, [0, 1, 0, 1])


@pytest.mark.parametrize("fmt", ["pickle", "cloudpickle"])
def test_a_pickled_flavor_is_refused_with_a_clear_error(fmt: str) -> None:
    mlmodel = {"flavors": {"sklearn": {"pickled_model": "model.pkl", "serialization_format": fmt}}}
    with pytest.raises(UntrustedModelError, match=f"serialized with '{fmt}'.*refused"):
        check_flavor(mlmodel, "models:/churn_logreg/7")


def test_a_flavor_without_a_format_is_a_pickle_and_refused() -> None:
    with pytest.raises(UntrustedModelError, match="'pickle'"):
        check_flavor({"flavors": {"sklearn": {"pickled_model": "model.pkl"}}}, "m")


def test_a_model_without_the_sklearn_flavor_is_refused() -> None:
    with pytest.raises(UntrustedModelError, match="no sklearn flavor"):
        check_flavor({"flavors": {"python_function": {"loader_module": "evil"}}}, "m")


def test_the_skops_flavor_names_its_file() -> None:
    conf = {"sklearn": {"pickled_model": "model.skops", "serialization_format": "skops"}}
    assert check_flavor({"flavors": conf}, "m") == "model.skops"


def test_a_skops_file_with_allowed_types_loads(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    skops.io.dump(_pipeline(), path)
    model = load_skops_file(path, ALLOW, "m")
    assert model.predict_proba(np.array([[3.0]])).shape == (1, 2)


def test_a_skops_file_needing_types_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    skops.io.dump({"model": _pipeline(), "extra": Fraction(1, 3)}, path)
    with pytest.raises(UntrustedModelError, match=r"fractions\.Fraction"):
        load_skops_file(path, ALLOW, "m")


def test_a_pickle_posing_as_a_skops_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    path.write_bytes(pickle.dumps(_pipeline()))
    with pytest.raises(UntrustedModelError, match="not a readable skops file"):
        load_skops_file(path, ALLOW, "m")

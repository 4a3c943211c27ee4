"""Champion history of the churn model registry, without MLflow (the promotion rule itself is
in tests/unit/test_ml_churn_metrics.py)."""

from __future__ import annotations

import os

import pytest

from ml.registry import history_after_promote, history_after_rollback


def test_history_after_promote() -> None:
    assert history_after_promote([], None, "1") == ["1"]
    assert history_after_promote(["1"], "1", "2") == ["1", "2"]
    # An alias set by hand outside this module is folded into the history.
    assert history_after_promote([], "3", "4") == ["3", "4"]
    assert history_after_promote(["1", "2"], "2", "2") == ["1", "2"]


def test_history_after_rollback_walks_back() -> None:
    target, history = history_after_rollback(["1", "2", "3"], "3")
    assert (target, history) == ("2", ["1", "2"])
    target, history = history_after_rollback(history, target)
    assert (target, history) == ("1", ["1"])
    with pytest.raises(LookupError):
        history_after_rollback(history, "1")


def test_rollback_after_re_promotion() -> None:
    history = history_after_promote(["1", "2"], "2", "1")
    assert history == ["1", "2", "1"]
    assert history_after_rollback(history, "1") == ("2", ["1", "2"])


def test_tracking_context_leaves_no_mlflow_uri_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Child processes (dbt, dagster CLIs) must not inherit a URI set for one call."""
    from ml.registry import tracking_context

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    with tracking_context("http://127.0.0.1:9"):
        pass
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert "MLFLOW_REGISTRY_URI" not in os.environ

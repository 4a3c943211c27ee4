"""Assets that would leave stale data after one transient fault retry with exponential backoff
and jitter: every raw table, the churn scores and the demand forecast."""

from __future__ import annotations

import dagster as dg
import pytest

from orchestration.definitions import defs
from orchestration.lib.ingest.tables import TABLES

RETRIED = [
    *(f"raw/{spec.name}" for spec in TABLES),
    "ml/churn_scores",
    "ml/demand_forecasts",
    "ml/forecast_backtests",
]


def _policy(key: str) -> dg.RetryPolicy | None:
    graph = defs.resolve_asset_graph()
    assets_def = graph.get(dg.AssetKey.from_user_string(key)).assets_def
    return (
        assets_def.node_def.retry_policy
        if isinstance(assets_def.node_def, dg.OpDefinition)
        else None
    )


@pytest.mark.parametrize("key", RETRIED)
def test_asset_retries_with_exponential_backoff_and_jitter(key: str) -> None:
    policy = _policy(key)
    assert policy is not None, key
    assert policy.backoff == dg.Backoff.EXPONENTIAL
    assert policy.jitter is not None
    assert policy.max_retries >= 3
    # The last wait still ends long before the next scheduled run of the same asset.
    assert policy.delay is not None
    assert policy.delay * 2 ** (policy.max_retries - 1) < (120 if key.startswith("raw/") else 3600)


def test_a_scoring_outage_is_ridden_out_for_half_an_hour() -> None:
    policy = _policy("ml/churn_scores")
    assert policy is not None
    assert policy.delay is not None
    total = sum(policy.delay * 2**n for n in range(policy.max_retries))
    assert total >= 30 * 60


def test_a_fault_no_retry_fixes_fails_at_once_and_others_still_retry() -> None:
    from ml.safe_load import UntrustedModelError
    from orchestration.lib.retries import fail_at_once

    with pytest.raises(dg.Failure) as failure, fail_at_once(UntrustedModelError):
        raise UntrustedModelError("models:/churn_logreg/7 is serialized with 'pickle'; refused")
    assert failure.value.allow_retries is False
    assert failure.value.description == (
        "models:/churn_logreg/7 is serialized with 'pickle'; refused"
    )
    with pytest.raises(ConnectionError), fail_at_once(UntrustedModelError):
        raise ConnectionError("MLflow is restarting")  # left to the retry policy

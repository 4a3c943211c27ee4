"""The Models & data page's probes: a rerun after the memo expired gets the last value at once
while one background thread probes again (stale-while-revalidate)."""

from __future__ import annotations

import threading
import time

import pytest

from app_streamlit import models_data


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    models_data.clear_memo()


def test_a_rerun_after_expiry_does_not_wait_for_the_probe() -> None:
    calls: list[int] = []
    release = threading.Event()

    def probe() -> int:
        calls.append(1)
        if len(calls) > 1:
            release.wait(5)  # a slow probe, like MLflow or Dagster timing out
        return len(calls)

    assert models_data._memoized("k", probe, ttl=0.05) == 1  # the first call computes
    time.sleep(0.1)
    started = time.monotonic()
    assert models_data._memoized("k", probe, ttl=0.05) == 1  # stale value, at once
    assert models_data._memoized("k", probe, ttl=0.05) == 1  # one refresh in flight only
    assert time.monotonic() - started < 0.5
    release.set()
    deadline = time.monotonic() + 5
    while models_data._memoized("k", probe, ttl=60) != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert models_data._memoized("k", probe, ttl=60) == 2
    assert len(calls) == 2


def test_a_failing_refresh_keeps_the_last_value_and_retries_later() -> None:
    outcomes = iter([1, RuntimeError("probe crashed"), 3])

    def probe() -> int:
        out = next(outcomes)
        if isinstance(out, Exception):
            raise out
        return out

    assert models_data._memoized("k", probe, ttl=0.01) == 1
    time.sleep(0.05)
    assert models_data._memoized("k", probe, ttl=0.01) == 1  # refresh starts, and fails
    deadline = time.monotonic() + 5
    while "k" in models_data._refreshing and time.monotonic() < deadline:
        time.sleep(0.01)
    assert models_data._memoized("k", probe, ttl=0.01) == 1  # still the last good value
    deadline = time.monotonic() + 5
    while models_data._memoized("k", probe, ttl=60) != 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert models_data._memoized("k", probe, ttl=60) == 3

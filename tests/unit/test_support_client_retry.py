"""Retry timing: exponential backoff with jitter that never undercuts Retry-After."""

import pytest

from orchestration.lib.ingest.support_client import RetryPolicy, parse_retry_after


def test_backoff_grows_exponentially_within_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=60.0)
    for attempt, nominal in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)]:
        delay = policy.delay(attempt, None)
        assert nominal * 0.8 <= delay <= nominal * 1.2


def test_retry_after_is_honoured_but_capped() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=10.0)
    assert policy.delay(1, 3.0) == pytest.approx(3.0)
    assert policy.delay(1, 120.0) == 10.0


@pytest.mark.parametrize(
    ("header", "expected"), [("5", 5.0), ("0.5", 0.5), (None, None), ("soon", None), ("-3", 0.0)]
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected

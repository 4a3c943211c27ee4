"""How long an asset keeps trying after a transient fault (a restarted PostgreSQL, an MLflow
or support-API outage) before its run fails.

Without a policy one failed attempt leaves the data as old as the previous success: a daily
scoring run that meets an MLflow restart at 03:00 would leave day-old scores until the next
night. Retries back off exponentially with jitter so that several assets failing on the same
outage do not come back in lockstep. Every retried body is idempotent (ingestion rolls back
to its watermark, scoring and forecasting replace their own run's rows). A fault that no
retry can fix fails its step at once instead (`fail_at_once`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

# The frequent cycles (every 5-15 min): about 15 s, 30 s, 60 s, i.e. done before the next tick.
INGESTION_RETRY = dg.RetryPolicy(
    max_retries=3, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# The daily model runs: about 2, 4, 8 and 16 min, riding out a half-hour outage of MLflow or
# the warehouse, still hours before anyone reads the scores.
MODEL_RUN_RETRY = dg.RetryPolicy(
    max_retries=4, delay=120, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


@contextmanager
def fail_at_once(*errors: type[Exception]) -> Iterator[None]:
    """Turn `errors` into a step failure that skips the retry policy.

    For faults no waiting can fix: a champion refused as untrusted (a pickle registered by
    someone else) stays refused on every attempt, so retrying would only hold back the
    run-failure alert for the half hour of MODEL_RUN_RETRY. The message is the error's own,
    which names the version and the way out."""
    try:
        yield
    except errors as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc

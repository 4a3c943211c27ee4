"""`opsdash sim generate --end` and `opsdash sim replay`: a history that stops days ago, then
those days written as live mode would have, against real PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner, Result

from opsdash_core.settings import get_settings, reset_settings
from simulator.cli import sim
from simulator.sourcedb import scratch_database

pytestmark = pytest.mark.integration

DAY = 86400


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with (
        scratch_database(get_settings().source_url, "marketplace_replaytest") as scratch,
        pytest.MonkeyPatch.context() as mp,
    ):
        mp.setenv("SOURCE_URL", scratch)
        reset_settings()
        yield scratch
    reset_settings()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(sim, list(args))


def test_replay_fills_the_days_since_the_history_ended(url: str) -> None:
    end = int(time.time()) // 60 * 60 - 3 * DAY
    done = invoke("generate", "--scale", "2000", "--days", "20", "--end", str(end))
    assert done.exit_code == 0, done.output
    with psycopg.connect(url) as conn:
        (history_end,) = conn.execute(
            "select extract(epoch from history_end)::bigint from truth.generation"
        ).fetchone()  # type: ignore[misc]
        (newest,) = conn.execute(
            "select extract(epoch from max(created_at))::bigint from session_requests"
        ).fetchone()  # type: ignore[misc]
    assert history_end == end
    assert newest <= end

    done = invoke("replay", "--from", str(end))
    assert done.exit_code == 0, done.output
    assert "[sim replay]" in done.output
    assert "100%" in done.output
    assert "requests_new=" in done.output
    assert "customers_new=" in done.output

    with psycopg.connect(url) as conn:
        per_day = conn.execute(
            "select floor((extract(epoch from created_at) - %s) / 86400)::int as day, count(*)"
            " from session_requests where created_at > to_timestamp(%s) group by 1 order by 1",
            (end, end),
        ).fetchall()
        (future,) = conn.execute(
            "select count(*) from tutoring_sessions where updated_at > now()"
        ).fetchone()  # type: ignore[misc]
        (settled,) = conn.execute(
            "select count(*) from tutoring_sessions"
            " where status = 'completed' and updated_at > to_timestamp(%s)",
            (end,),
        ).fetchone()  # type: ignore[misc]
    # every replayed day has its own requests (hourly ticks, not one burst at the end)
    assert [day for day, _ in per_day] == [0, 1, 2]
    assert min(count for _, count in per_day) > 20
    assert settled > 0  # sessions booked in the replay were held and completed in it
    assert future == 0  # nothing written past now


def test_replay_refuses_an_empty_or_future_span(url: str) -> None:
    now = int(time.time())
    done = invoke("replay", "--from", str(now - 60), "--to", str(now - 120))
    assert done.exit_code != 0
    assert "nothing to replay" in done.output
    done = invoke("replay", "--from", str(now - 60), "--to", str(now + 3600))
    assert done.exit_code != 0
    assert "cannot replay the future" in done.output
    done = invoke("generate", "--scale", "100", "--end", str(now + 3600), "--replace")
    assert done.exit_code != 0
    assert "cannot end in the future" in done.output

"""`opsdash sim live` and `opsdash sim inject ...` against real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import NamedTuple

import psycopg
import pytest
from click.testing import CliRunner, Result

from opsdash_core.settings import PROJECT_ROOT, get_settings, reset_settings
from simulator.cli import sim
from simulator.columns import REASONS
from simulator.generator import generate, utc_minute
from simulator.model import utc_hour_profile
from simulator.scenarios import active_effects
from simulator.sourcedb import scratch_database

pytestmark = pytest.mark.integration


HOUR = 3600


def busy_hour(start: int, step: int) -> int:
    """The first top of the hour with at least half the day's mean demand, searching from
    `start` backwards (step -1: at or before it) or forwards (step 1: after it): live demand
    follows the UTC hour and is nil for some hours (the US night), so a live tick that must
    write something is replayed at a busy hour."""
    t = start // HOUR * HOUR + (HOUR if step > 0 else 0)
    while utc_hour_profile(t // 86400)[t % 86400 // HOUR] * 24 < 0.5:
        t += step * HOUR
    return t


class Market(NamedTuple):
    url: str
    end: int  # the generated history ends here, an hour before live_at
    live_at: int  # a busy hour in the past that live ticks replay


@pytest.fixture(scope="module")
def market() -> Iterator[Market]:
    with (
        scratch_database(get_settings().source_url, "marketplace_simtest") as url,
        pytest.MonkeyPatch.context() as mp,
    ):
        live_at = busy_hour(utc_minute() - 900, -1)
        end = live_at - HOUR
        generate(url, scale=3000, days=30, seed=5, history_end=end, echo=lambda _m: None)
        mp.setenv("SOURCE_URL", url)
        reset_settings()
        yield Market(url, end, live_at)
    reset_settings()


def test_busy_hour_is_a_busy_top_of_the_hour() -> None:
    now = int(time.time())
    for t in (busy_hour(now, -1), busy_hour(now, 1)):
        assert t % HOUR == 0
        assert utc_hour_profile(t // 86400)[t % 86400 // HOUR] * 24 >= 0.5
    assert now - 86400 < busy_hour(now, -1) <= now < busy_hour(now, 1) < now + 86400 + HOUR


def run(*args: str) -> Result:
    result = CliRunner().invoke(sim, list(args))
    assert result.exit_code == 0, result.output
    return result


def rows(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def one(url: str, query: str, params: tuple = ()) -> object:
    return rows(url, query, params)[0][0]


def ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def test_live_once_inserts_and_updates(market: Market) -> None:
    url, end, live_at = market
    tables = ("customers", "session_requests", "tutoring_sessions", "support.inbound_calls")
    before = {t: one(url, f"select count(*) from {t}") for t in tables}
    result = run("live", "--once", "--interval", "3600", "--speed", "20", "--at", str(live_at))
    assert "[sim live]" in result.output
    after = {t: one(url, f"select count(*) from {t}") for t in tables}
    assert after["session_requests"] > before["session_requests"]
    assert after["support.inbound_calls"] > before["support.inbound_calls"]
    assert after["customers"] > before["customers"]
    assert one(url, "select count(*) from truth.customer_latent") == after["customers"]
    assert one(url, "select count(*) from truth.customer_outcomes") == after["customers"]
    updated = one(
        url,
        "select count(*) from tutoring_sessions where created_at <= %s and updated_at > %s",
        (ts(end), ts(end)),
    )
    assert updated > 0
    assert (
        one(
            url,
            "select count(*) from session_requests where created_at <= %s and updated_at > %s",
            (ts(end), ts(end)),
        )
        > 0
    )
    for t in tables:
        assert one(url, f"select count(*) from {t} where updated_at > %s", (ts(live_at),)) == 0
        assert one(url, f"select count(*) from {t} where updated_at < created_at") == 0


def test_live_matches_pending_requests_a_minute_later(market: Market) -> None:
    url, end, live_at = market
    for interval, tick in ((600, live_at + 600), (60, live_at + 660)):
        run("live", "--once", "--interval", str(interval), "--speed", "20", "--at", str(tick))
        # every request that was already waiting when the tick began is matched or unfilled
        # (the tick's own new requests wait for the next one)
        assert (
            one(
                url,
                "select count(*) from session_requests where status = 'pending' "
                "and created_at <= %s",
                (ts(tick - interval - 1),),
            )
            == 0
        )
        # Let a minute pass for the requests just written, so the next tick may match them.
        with psycopg.connect(url) as conn:
            conn.execute(
                "update session_requests set created_at = created_at - interval '2 minutes'"
                " where status = 'pending'"
            )
    assert (
        one(
            url,
            "select count(*) from session_requests where status = 'matched' and updated_at > %s",
            (ts(end),),
        )
        > 0
    )
    assert (
        one(
            url,
            "select count(*) from tutoring_sessions s join session_requests r "
            "on r.id = s.session_request_id where r.tutoring_session_id <> s.id",
        )
        == 0
    )


def test_live_stops_cleanly_on_sigterm(market: Market) -> None:
    url = market.url
    env = {**os.environ, "SOURCE_URL": url, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from simulator.cli import sim; sim()", "live", "--interval", "0.5"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = proc.stdout.readline() if proc.stdout else ""
        assert "[sim live]" in first, first
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, first + rest
    assert "Traceback" not in rest


def test_demand_spike(market: Market) -> None:
    url = market.url
    start = time.time() - 1
    out = run("inject", "demand-spike", "--subject", "algebra i", "--factor", "4").output
    assert "demand-spike" in out
    params = rows(
        url, "select params from truth.scenarios where scenario = 'demand-spike' order by id"
    )[-1][0]
    assert params["subject"] == "Algebra I"
    assert params["factor"] == 4
    burst = one(
        url,
        "select count(*) from session_requests r join subjects s on s.id = r.subject_id "
        "where s.name = 'Algebra I' and r.updated_at >= %s "
        "and r.created_at >= %s - interval '1 hour'",
        (ts(start), ts(start)),
    )
    assert burst >= 24
    with psycopg.connect(url) as conn:
        fx = active_effects(conn, int(time.time()) + 60)
    assert fx.demand[params["subject_id"]][0] == 4


def test_at_needs_once_and_a_time() -> None:
    result = CliRunner().invoke(sim, ["live", "--at", "2026-12-01T18:00:00"])
    assert result.exit_code == 2
    assert "--at writes one interval: add --once" in result.output
    result = CliRunner().invoke(sim, ["live", "--once", "--at", "yesterday"])
    assert result.exit_code == 2
    assert "neither ISO 8601 nor epoch seconds" in result.output


def test_unknown_subject_is_refused(market: Market) -> None:
    result = CliRunner().invoke(sim, ["inject", "demand-spike", "--subject", "Klingon"])
    assert result.exit_code != 0
    assert "unknown subject" in result.output


def test_tutor_no_shows(market: Market) -> None:
    url = market.url
    tutor = one(
        url,
        "select tutor_id from tutoring_sessions where status = 'completed' "
        "and scheduled_at > now() - interval '60 hours' "
        "group by 1 order by count(*) desc, 1 limit 1",
    )
    start = time.time() - 1
    run("inject", "tutor-no-shows", "--tutor", str(tutor), "--rate", "1.0")
    missed = one(
        url,
        "select count(*) from tutoring_sessions where tutor_id = %s "
        "and status = 'no_show' and no_show_by = 'tutor' and rating is null "
        "and updated_at >= %s",
        (tutor, ts(start)),
    )
    assert missed >= 3
    assert (
        one(
            url,
            "select count(*) from tutoring_sessions where tutor_id = %s and status = "
            "'completed' and scheduled_at > now() - interval '60 hours' "
            "and scheduled_at + interval '90 minutes' < now()",
            (tutor,),
        )
        == 0
    )
    with psycopg.connect(url) as conn:
        assert active_effects(conn, int(time.time()) + 60).no_show[tutor] == 1.0
    result = CliRunner().invoke(sim, ["inject", "tutor-no-shows", "--tutor", "999999"])
    assert result.exit_code != 0


def test_support_surge(market: Market) -> None:
    url = market.url
    start = time.time() - 1
    run("inject", "support-surge", "--factor", "5")
    burst = one(
        url,
        "select count(*) from support.inbound_calls where updated_at >= %s "
        "and called_at >= %s - interval '1 hour'",
        (ts(start), ts(start)),
    )
    assert burst >= 10
    with psycopg.connect(url) as conn:
        assert active_effects(conn, int(time.time()) + 60).calls >= 5


def test_customer_quiet(market: Market) -> None:
    url = market.url
    out = run("inject", "customer-quiet", "--customers", "5", "--hours", "48").output
    assert "customer-quiet" in out
    params = rows(
        url, "select params from truth.scenarios where scenario = 'customer-quiet' order by id"
    )[-1][0]
    quiet = params["customer_ids"]
    assert len(quiet) == 5
    assert params["hours"] == 48
    pending = (
        "select count(*) from session_requests where customer_id = any(%s) and status = 'pending'"
    )
    assert one(url, pending, (quiet,)) == 0
    booked = (
        "select count(*) from tutoring_sessions where customer_id = any(%s) "
        "and status = 'scheduled' and scheduled_at > now()"
    )
    assert one(url, booked, (quiet,)) == 0
    with psycopg.connect(url) as conn:
        assert active_effects(conn, int(time.time()) + 60).quiet >= set(quiet)
    # an hour of live traffic at 50x activity, at the next busy hour of the 48 quiet ones:
    # others book, the quiet customers do not
    before = one(url, "select coalesce(max(id), 0) from session_requests")
    at = busy_hour(int(time.time()) + 2 * HOUR, 1)
    run("live", "--once", "--interval", "3600", "--speed", "50", "--at", str(at))
    new = "select count(*) from session_requests where id > %s and "
    assert one(url, new + "not (customer_id = any(%s))", (before, quiet)) > 0
    assert one(url, new + "customer_id = any(%s)", (before, quiet)) == 0


def test_customer_quiet_named_customers(market: Market) -> None:
    """--customer names who goes quiet; their booked sessions from now on are cancelled by the
    customer, as of the injection (so incremental readers pick them up)."""
    url = market.url
    named = [
        int(r[0])
        for r in rows(
            url,
            "select customer_id from tutoring_sessions where status = 'scheduled' "
            "and scheduled_at > now() + interval '1 hour' and customer_id is not null "
            "group by customer_id order by customer_id limit 2",
        )
    ]
    assert named
    args = [a for c in named for a in ("--customer", str(c))]
    out = run("inject", "customer-quiet", *args, "--hours", "24").output
    assert "booked sessions cancelled" in out
    sc_id, params = rows(
        url,
        "select id, params from truth.scenarios where scenario = 'customer-quiet' "
        "order by id desc limit 1",
    )[0]
    assert params["customer_ids"] == named
    assert params["cancelled_sessions"] >= len(named)
    cancelled = (
        "select count(*) from tutoring_sessions s join truth.scenarios t on t.id = %s "
        "where s.customer_id = any(%s) and s.status = 'cancelled' "
        "and s.cancelled_by = 'customer' and s.updated_at = t.started_at"
    )
    assert one(url, cancelled, (sc_id, named)) == params["cancelled_sessions"]


def test_bad_batch_writes_invalid_and_valid_rows(market: Market) -> None:
    url = market.url
    out = run("inject", "bad-batch", "--rows", "40").output
    assert "invalid" in out
    params = rows(
        url,
        "select params from truth.scenarios where scenario = 'bad-batch' order by id desc limit 1",
    )[0][0]
    assert params["rows"] == 40
    assert (
        sum(
            len(params[k])
            for k in (
                "rating_out_of_range",
                "null_customer_id",
                "unknown_tutor_id",
                "future_timestamps",
            )
        )
        == 40
    )
    assert len(params["valid_session_ids"]) == 20

    def count(where: str, key: str) -> int:
        return one(
            url,
            f"select count(*) from tutoring_sessions where id = any(%s) and {where}",
            (params[key],),
        )

    assert count("rating = 7", "rating_out_of_range") == len(params["rating_out_of_range"])
    assert count("customer_id is null", "null_customer_id") == len(params["null_customer_id"])
    assert count("tutor_id not in (select id from tutors)", "unknown_tutor_id") == len(
        params["unknown_tutor_id"]
    )
    assert count(
        "created_at > now() + interval '23 hours' and updated_at >= created_at", "future_timestamps"
    ) == len(params["future_timestamps"])
    valid = (
        "rating between 1 and 5 and customer_id is not null and updated_at <= now() "
        "and tutor_id in (select id from tutors)"
    )
    assert count(valid, "valid_session_ids") == 20
    bad_calls = rows(
        url,
        "select customer_id, reason_code from support.inbound_calls where id = any(%s)",
        (params["invalid_call_ids"],),
    )
    assert all(c is None or r not in REASONS for c, r in bad_calls)
    assert len(bad_calls) >= 2
    good_calls = rows(
        url,
        "select customer_id, reason_code from support.inbound_calls where id = any(%s)",
        (params["valid_call_ids"],),
    )
    assert all(c is not None and r in REASONS for c, r in good_calls)

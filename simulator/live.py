"""Live mode: keep the marketplace running at wall-clock time on the same latent model.

Every tick covers the wall-clock interval (t0, t1] and writes what happened in it: new session
requests (matched a minute later), sessions completing, being rated or cancelled, new customers,
customers whose churn has become official, support calls and their resolution. Inserted and
updated rows carry timestamps inside the tick, never before the newest `updated_at` already in
the database, so incremental readers (watermark on updated_at) see every change.

The steps live in `live_sessions`, `live_customers` and `live_calls`, the world in
`live_world` and the row helpers in `live_rows`; their public names are re-exported here for
the callers that import them from this module.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import numpy as np
import psycopg

from simulator.live_calls import call_rows, new_calls
from simulator.live_customers import customer_status, new_customers, new_requests, request_rows
from simulator.live_rows import (
    alloc_ids,
    insert_rows,
    stamps,
    update_rows,
    watermark,
)
from simulator.live_sessions import (
    DUE_SQL,
    GOAL_SQL,
    UNRATED_SQL,
    UPCOMING_SQL,
    match_pending,
    settle_sessions,
)
from simulator.live_world import (
    CUSTOMER_SQL,
    World,
    index_of,
    load_customers,
    load_tutors,
    load_world,
    refresh_customers,
)
from simulator.scenarios import active_effects

__all__ = [
    "CUSTOMER_SQL",
    "DUE_SQL",
    "GOAL_SQL",
    "RELOAD_SECONDS",
    "UNRATED_SQL",
    "UPCOMING_SQL",
    "World",
    "alloc_ids",
    "call_rows",
    "customer_status",
    "index_of",
    "insert_rows",
    "load_customers",
    "load_tutors",
    "load_world",
    "match_pending",
    "new_calls",
    "new_customers",
    "new_requests",
    "refresh_customers",
    "request_rows",
    "run_live",
    "settle_sessions",
    "stamps",
    "tick",
    "update_rows",
    "watermark",
]

RELOAD_SECONDS = 300  # between full reloads of the customers (a few seconds at S10)


def tick(
    conn: psycopg.Connection, w: World, t0: int, t1: int, speed: float = 1.0
) -> dict[str, int]:
    """Write everything that happens in (t0, t1]; rates use (t1 - t0) * speed of model time."""
    rng = np.random.default_rng([w.seed, t1])
    dt = (t1 - t0) * speed
    # never write before the end of the history or the newest change already there
    lo = min(max(t0, w.history_end, watermark(conn, t1)), t1 - 1)
    if time.monotonic() - w.loaded_at > RELOAD_SECONDS:
        refresh_customers(conn, w)
    fx = active_effects(conn, t1)
    return {
        **settle_sessions(conn, w, rng, lo, t1, dt, fx),
        **match_pending(conn, w, rng, lo, t1),
        **new_requests(conn, w, rng, lo, t1, dt, fx),
        **new_customers(conn, w, rng, lo, t1, dt),
        **customer_status(conn, rng, lo, t1),
        **new_calls(conn, w, rng, lo, t1, dt, fx),
    }


def replay(
    url: str,
    *,
    start: int,
    end: int,
    step: int = 3600,
    speed: float = 1.0,
    echo: Callable[[str], None] = print,
) -> dict[str, int]:
    """Write what live mode would have written from `start` to `end`, one tick per `step`
    seconds of marketplace time, each committed on its own.

    Used to give a source weeks of live-written history (a history generated up to `start`,
    then this) before a stack's first build: rows then carry live mode's updates and late
    changes, not only the generator's. Ticks of an hour keep the hour-of-day demand shape."""
    if end <= start:
        raise ValueError(f"nothing to replay: end {end} is not after start {start}")
    with psycopg.connect(url) as conn:
        world = load_world(conn)
        conn.commit()
    totals: dict[str, int] = {}
    started = time.monotonic()
    t0, n, last_echo = start, 0, started
    while t0 < end:
        t1 = min(t0 + step, end)
        with psycopg.connect(url) as conn:
            counts = tick(conn, world, t0, t1, speed)
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
        t0, n = t1, n + 1
        if time.monotonic() - last_echo > 10 or t0 >= end:
            last_echo = time.monotonic()
            done = (t0 - start) / (end - start)
            echo(
                f"[sim replay] {time.strftime('%Y-%m-%d %H:%M', time.gmtime(t0))}Z "
                f"{done:.0%} ({n} ticks, {time.monotonic() - started:.0f} s)"
            )
    return totals


def run_live(
    url: str,
    *,
    interval: float,
    speed: float,
    once: bool,
    at: int | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Tick every `interval` seconds until SIGTERM/SIGINT (or once).

    `at` (with `once`) writes the interval ending at that epoch second instead of now: the
    marketplace's demand follows the hour of day, so a replay of a chosen hour is what makes
    a one-off tick (or a test) independent of the wall clock."""
    if at is not None and not once:
        raise ValueError("at= writes one interval; it needs once=True")
    clock: Callable[[], float] = time.time if at is None else (lambda: float(at))
    stop = threading.Event()
    if not once and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    with psycopg.connect(url) as conn:
        world = load_world(conn)
        conn.commit()
    t_prev = int(clock() - interval)
    while True:
        t1 = int(clock())
        if once or t1 > t_prev:  # timestamps are whole seconds: at most one tick per second
            try:
                with psycopg.connect(url) as conn:
                    counts = tick(conn, world, min(t_prev, t1 - 1), t1, speed)
                echo(
                    f"[sim live] {time.strftime('%H:%M:%S', time.gmtime(t1))}Z "
                    + " ".join(f"{k}={v}" for k, v in counts.items() if v)
                )
                t_prev = t1
            except psycopg.Error as exc:
                if once:
                    raise
                echo(f"[sim live] tick failed, retrying next interval: {exc}")
                world.loaded_at = 0.0  # the rolled-back tick may have appended customers
        if once or stop.wait(max(0.05, t_prev + interval - time.time())):
            return

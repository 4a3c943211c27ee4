"""Live tick step for support: inbound calls at each customer's propensity and after tutor
no-shows, and open calls getting resolved."""

from __future__ import annotations

import numpy as np
import psycopg

from simulator import model as m
from simulator.columns import BASE_REASON_P, CHANNELS, REASONS, SUPPORT_REASON_P, UNSET
from simulator.live_rows import alloc_ids, insert_rows, stamps, update_rows
from simulator.live_world import Effects, World
from simulator.model import DAY, HOUR


def new_calls(
    conn: psycopg.Connection,
    w: World,
    rng: np.random.Generator,
    lo: int,
    t1: int,
    dt: float,
    fx: Effects,
) -> dict[str, int]:
    """Support contacts at each customer's propensity (more while fading, more in a surge),
    after tutor no-shows; and open calls getting resolved."""
    c = w.cust
    idx = np.arange(c.n)
    fading = m.declining(c, idx, np.full(c.n, t1))
    extra = np.where(c.cause == m.SUPPORT, 5.0, 2.0) / (0.8 * c.decline_days * DAY)
    lam = (0.005 * c.support_p / DAY * fx.calls + fading * extra) * dt * (c.signup <= t1)
    who = np.repeat(idx, rng.poisson(lam))
    reason = np.where(
        fading[who],
        rng.choice(6, len(who), p=SUPPORT_REASON_P),
        rng.choice(6, len(who), p=BASE_REASON_P),
    )
    no_show_customers = [
        r[0]
        for r in conn.execute(
            "select customer_id from tutoring_sessions where no_show_by = 'tutor' "
            "and customer_id is not null and updated_at > to_timestamp(%s) "
            "and updated_at <= to_timestamp(%s)",
            (lo, t1),
        ).fetchall()
    ]
    hurt = np.array([h for h in no_show_customers if rng.random() < 0.35], dtype=np.int64)
    n = insert_rows(
        conn,
        "support.inbound_calls",
        call_rows(
            rng,
            conn,
            np.concatenate([w.ids[who], hurt]),
            np.concatenate([reason, np.full(len(hurt), 2)]),
            lo,
            t1,
        ),
    )
    rows = conn.execute(
        "select id from support.inbound_calls where not resolved and customer_id is not null "
        "and created_at > to_timestamp(%s) and created_at <= to_timestamp(%s)",
        (t1 - 10 * DAY, lo),
    ).fetchall()
    open_ids = np.array([r[0] for r in rows], dtype=np.int64)
    done = open_ids[rng.random(len(open_ids)) < 1 - np.exp(-dt / (5 * HOUR))]
    resolved = update_rows(
        conn,
        "support.inbound_calls",
        {
            "id": done,
            "resolved": np.ones(len(done), dtype=bool),
            "updated_at": stamps(rng, len(done), lo, t1),
        },
    )
    return {"calls_new": n, "calls_resolved": resolved}


def call_rows(
    rng: np.random.Generator,
    conn: psycopg.Connection,
    customer_id: np.ndarray,
    reason: np.ndarray,
    lo: int,
    t1: int,
) -> dict[str, np.ndarray]:
    """Inbound call rows placed inside (lo, t1], as the support system records them."""
    k = len(customer_id)
    channel = rng.choice(3, k, p=[0.45, 0.35, 0.2])
    dur = np.where(
        channel == 0, rng.lognormal(np.log(420), 0.6, k), rng.lognormal(np.log(700), 0.5, k)
    ).astype(np.int64)
    called = stamps(rng, k, lo, t1)
    created = np.maximum(np.minimum(called + np.where(channel == 2, 0, dur), t1), called)
    return {
        "id": alloc_ids(conn, "support.inbound_calls", k),
        "customer_id": customer_id,
        "reason_code": REASONS[reason].astype(object),
        "channel": CHANNELS[channel],
        "duration_seconds": np.where(channel == 2, UNSET, dur),
        "resolved": np.zeros(k, dtype=bool),
        "called_at": called,
        "created_at": created,
        "updated_at": created,
    }

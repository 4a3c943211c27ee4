"""Live tick steps for customers: they ask for sessions at their model rate, new ones sign up,
and churned ones are marked cancelled."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import psycopg

from opsdash_core.db import first_row
from simulator import model as m
from simulator.bookings import local_start
from simulator.columns import UNSET, Column, names
from simulator.history import latent_columns
from simulator.live_rows import alloc_ids, insert_rows, stamps, update_rows
from simulator.live_world import Effects, World
from simulator.model import DAY, HOUR


def _booking_times(
    rng: np.random.Generator, cust: m.Customers, who: np.ndarray, created: np.ndarray
) -> np.ndarray:
    """When customers booking at `created` want their session (as in the history)."""
    k = len(who)
    lead = np.where(
        rng.random(k) < 0.5, rng.uniform(48, 240, k), 1 + np.minimum(rng.gamma(1.2, 20, k), 14 * 24)
    )
    at = local_start(rng, cust, who, created + (lead * HOUR).astype(np.int64))
    return np.where(at < created + 2 * HOUR, at + DAY, at)


def new_requests(
    conn: psycopg.Connection,
    w: World,
    rng: np.random.Generator,
    lo: int,
    t1: int,
    dt: float,
    fx: Effects,
) -> dict[str, int]:
    """Customers ask for sessions at their model rate (seasonal, fading before churn), plus the
    extra near-term demand of an active demand spike."""
    c = w.cust
    idx = np.arange(c.n)
    day = t1 // DAY
    by_cat = np.array([m.day_factors(np.array([day]), k)[0] for k in range(len(m.CATEGORY_NAMES))])
    hour_w = m.utc_hour_profile(day)[(t1 % DAY) // HOUR] * 24
    lam = c.rate / 7 / DAY * dt * by_cat[m.catalog().category[c.main_subject]] * hour_w
    lam *= m.engagement(c, idx, np.full(c.n, t1)) * (c.signup <= t1)
    if fx.quiet:  # customers of an active customer-quiet scenario book nothing
        lam *= ~np.isin(w.ids, list(fx.quiet))
    who = np.repeat(idx, rng.poisson(lam))
    created = stamps(rng, len(who), lo, t1)
    use2 = (c.second_subject[who] >= 0) & (rng.random(len(who)) < 0.25)
    subject = np.where(use2, c.second_subject[who], c.main_subject[who])
    at = _booking_times(rng, c, who, created)
    for sid, (factor, until) in fx.demand.items():
        base = lam[c.main_subject == sid - 1].sum()
        extra = rng.poisson(max(factor - 1, 0) * base)
        if extra and lam.sum() > 0:
            more = rng.choice(c.n, extra, p=lam / lam.sum())
            t = stamps(rng, extra, lo, t1)
            near = t + rng.integers(HOUR, max(until - t1, 2 * HOUR) + HOUR, extra)
            who, created = np.concatenate([who, more]), np.concatenate([created, t])
            subject = np.concatenate([subject, np.full(extra, sid - 1)])
            at = np.concatenate([at, near // 1800 * 1800])
    n = insert_rows(
        conn, "session_requests", request_rows(conn, w.ids[who], subject + 1, at, created)
    )
    return {"requests_new": n}


def request_rows(
    conn: psycopg.Connection,
    customer_id: np.ndarray,
    subject_id: np.ndarray,
    at: np.ndarray,
    created: np.ndarray,
) -> dict[str, Column]:
    n = len(customer_id)
    return {
        "id": alloc_ids(conn, "session_requests", n),
        "customer_id": customer_id,
        "subject_id": subject_id,
        "requested_start_at": at,
        "status": np.full(n, "pending", dtype=object),
        "created_at": created,
        "updated_at": created,
    }


def new_customers(
    conn: psycopg.Connection, w: World, rng: np.random.Generator, lo: int, t1: int, dt: float
) -> dict[str, int]:
    """Sign-ups at the history's pace, with latent traits and a truth row each."""
    n = rng.poisson(0.65 * w.scale / w.days * dt / DAY)
    if not n:
        return {}
    cust = m.draw_customers(rng, stamps(rng, n, lo, t1), w.tutors)
    ids = alloc_ids(conn, "customers", n)
    full, email = names(rng, n, ids, "example.com")
    insert_rows(
        conn,
        "customers",
        {
            "id": ids,
            "email": email,
            "full_name": full,
            "grade_level": cust.grade,
            "goal": np.array(m.GOALS)[cust.goal],
            "goal_progress_pct": np.zeros(n, dtype=np.int64),
            "acquisition_channel": np.array(m.CHANNELS)[cust.channel],
            "status": np.full(n, "active", dtype=object),
            "signed_up_at": cust.signup,
            "created_at": cust.signup,
            "updated_at": cust.signup,
        },
    )
    row = conn.execute("select rate_scale from truth.generation order by id desc limit 1")
    rate_scale = float(first_row(row)[0] or 1.0)
    insert_rows(conn, "truth.customer_latent", latent_columns(cust, w.tutor_ids, rate_scale, ids))
    cust.rate = cust.rate * rate_scale
    w.ids = np.concatenate([w.ids, ids])
    w.cust = m.Customers(
        **{
            f.name: np.concatenate([getattr(w.cust, f.name), getattr(cust, f.name)])
            for f in fields(m.Customers)
        }
    )
    churned = cust.churn_at <= t1 + 60 * DAY
    insert_rows(
        conn,
        "truth.customer_outcomes",
        {
            "customer_id": ids,
            "churned": churned,
            "churn_cause": np.array([*m.CAUSES, None], dtype=object)[
                np.where(churned, cust.cause, len(m.CAUSES))
            ],
            "churned_at": np.where(churned, cust.churn_at, UNSET),
        },
    )
    return {"customers_new": n}


def customer_status(
    conn: psycopg.Connection, rng: np.random.Generator, lo: int, t1: int
) -> dict[str, int]:
    """Customers who churned some days ago (3-29, fixed per customer) are marked cancelled."""
    ids = [
        r[0]
        for r in conn.execute(
            "select c.id from customers c join truth.customer_latent l on l.customer_id = c.id "
            "where c.status = 'active' and c.deleted_at is null "
            "and l.churn_at + make_interval(days => 3 + mod(c.id * 7919, 27)::int) "
            "<= to_timestamp(%s)",
            (t1,),
        ).fetchall()
    ]
    n = update_rows(
        conn,
        "customers",
        {
            "id": np.array(ids, dtype=np.int64),
            "status": np.full(len(ids), "cancelled", dtype=object),
            "updated_at": stamps(rng, len(ids), lo, t1),
        },
    )
    return {"customers_cancelled": n}

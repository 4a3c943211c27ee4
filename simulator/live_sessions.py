"""Live tick steps for sessions: due sessions are held or missed, held ones rated, upcoming ones
cancelled, and pending requests matched to a tutor (a new session) or marked unfilled."""

from __future__ import annotations

import numpy as np
import psycopg

from simulator import model as m
from simulator.columns import DURATIONS, UNSET
from simulator.live_rows import alloc_ids, columns_of, insert_rows, stamps, update_rows
from simulator.live_world import Effects, World
from simulator.matching import match
from simulator.model import DAY, HOUR


def _epoch_rows(
    conn: psycopg.Connection, query: str, params: tuple | dict, n: int
) -> list[np.ndarray]:
    return columns_of(conn.execute(query, params).fetchall(), n)


def _traits(w: World, customer_id: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, ...]:
    """Index into the active customers (-1: gone), and who is fading / a bad-sessions churner."""
    ci = w.customer_index(customer_id.astype(np.int64))
    known = ci >= 0
    if not w.cust.n:
        return ci, known, known
    safe = np.maximum(ci, 0)
    return ci, known & m.declining(w.cust, safe, at), known & (w.cust.cause[safe] == m.BAD)


def _quality(w: World, tutor_id: np.ndarray, fx: Effects) -> tuple[np.ndarray, ...]:
    ti = w.tutor_index(tutor_id.astype(np.int64))
    q = np.where(ti >= 0, w.tutors.quality[np.maximum(ti, 0)], 0.7)
    ns = np.where(ti >= 0, w.tutors.no_show_rate[np.maximum(ti, 0)], 0.03)
    for tid, rate in fx.no_show.items():
        ns = np.where(tutor_id == tid, rate, ns)
    return q, ns


DUE_SQL = """
select id, customer_id, tutor_id, extract(epoch from scheduled_at)::bigint
from tutoring_sessions
where status = 'scheduled' and scheduled_at <= to_timestamp(%(t1)s)
  and scheduled_at + make_interval(mins => coalesce(duration_minutes, 60)) <= to_timestamp(%(t1)s)
  and customer_id is not null and tutor_id is not null
"""
UNRATED_SQL = """
select id, customer_id, tutor_id, extract(epoch from updated_at)::bigint
from tutoring_sessions
where status = 'completed' and rating is null and customer_id is not null
  and updated_at > to_timestamp(%(since)s) and updated_at <= to_timestamp(%(lo)s)
"""
UPCOMING_SQL = """
select id, customer_id, tutor_id, extract(epoch from scheduled_at)::bigint,
       extract(epoch from created_at)::bigint
from tutoring_sessions
where status = 'scheduled' and scheduled_at > to_timestamp(%(t1)s) and customer_id is not null
"""
GOAL_SQL = """
update customers c
set goal_progress_pct = least(100, round(coalesce(c.goal_progress_pct, 0)
        + (100 - coalesce(c.goal_progress_pct, 0)) * (1 - exp(-power(l.learning_rate, 2) / 4))))::int,
    updated_at = greatest(to_timestamp(%(at)s), c.updated_at)
from truth.customer_latent l
where l.customer_id = c.id and c.id = any(%(ids)s)
"""


def settle_sessions(
    conn: psycopg.Connection,
    w: World,
    rng: np.random.Generator,
    lo: int,
    t1: int,
    dt: float,
    fx: Effects,
) -> dict[str, int]:
    """Sessions that ended are held or no-shows; held ones get rated; future ones get cancelled."""
    sid, cid, tid, at = _epoch_rows(conn, DUE_SQL, {"t1": t1}, 4)
    _, fading, bad = _traits(w, cid, at)
    _, ns = _quality(w, tid, fx)
    show = m.attendance(rng, ns, fading, bad)
    n_due = update_rows(
        conn,
        "tutoring_sessions",
        {
            "id": sid.astype(np.int64),
            "status": np.where(show == 0, "completed", "no_show"),
            "no_show_by": np.array([None, "tutor", "customer"], dtype=object)[show],
            "updated_at": stamps(rng, len(sid), lo, t1),
        },
    )
    if (show == 0).any():
        conn.execute(GOAL_SQL, {"at": t1, "ids": cid[show == 0].astype(int).tolist()})

    sid, cid, tid, done = _epoch_rows(conn, UNRATED_SQL, {"since": t1 - 3 * DAY, "lo": lo}, 4)
    e = np.exp(-(t1 - done) / (6 * HOUR))
    p = m.RATING_PROB * e / (1 - m.RATING_PROB + m.RATING_PROB * e)
    hit = rng.random(len(sid)) < 1 - np.exp(-p * dt / (6 * HOUR))
    _, fading, bad = _traits(w, cid[hit], np.full(hit.sum(), t1))
    q, _ = _quality(w, tid[hit], fx)
    n_rated = update_rows(
        conn,
        "tutoring_sessions",
        {
            "id": sid[hit].astype(np.int64),
            "rating": m.ratings(rng, q, fading, bad),
            "updated_at": stamps(rng, int(hit.sum()), lo, t1),
        },
    )

    sid, cid, tid, at, created = _epoch_rows(conn, UPCOMING_SQL, {"t1": t1}, 5)
    ci, fading, _ = _traits(w, cid, at)
    q, _ = _quality(w, tid, fx)
    p_cust, p_tut = m.cancel_probs(q, fading)
    window = np.maximum(at - created, HOUR)
    r_cust = np.where(ci >= 0, p_cust / window, 1 / DAY)  # churned customers drop their bookings
    r_tut = p_tut / window
    hit = rng.random(len(sid)) < 1 - np.exp(-(r_cust + r_tut) * dt)
    by_tutor = rng.random(len(sid)) < r_tut / (r_cust + r_tut)
    n_cancel = update_rows(
        conn,
        "tutoring_sessions",
        {
            "id": sid[hit].astype(np.int64),
            "status": np.full(hit.sum(), "cancelled", dtype=object),
            "cancelled_by": np.where(by_tutor[hit], "tutor", "customer").astype(object),
            "updated_at": stamps(rng, int(hit.sum()), lo, t1),
        },
    )
    return {"sessions_settled": n_due, "sessions_rated": n_rated, "sessions_cancelled": n_cancel}


def match_pending(
    conn: psycopg.Connection, w: World, rng: np.random.Generator, lo: int, t1: int
) -> dict[str, int]:
    """Requests older than a minute get a tutor (a new session) or are marked unfilled."""
    rid, cid, subj, at, created = _epoch_rows(
        conn,
        """
        select id, customer_id, subject_id, extract(epoch from requested_start_at)::bigint,
               extract(epoch from created_at)::bigint
        from session_requests
        where status = 'pending' and created_at <= to_timestamp(%s)
          and customer_id is not null and subject_id is not null""",
        (t1 - 60,),
        5,
    )
    if not len(rid):
        return {}
    ci, fading, _ = _traits(w, cid, at)
    safe = np.maximum(ci, 0)
    s = subj.astype(int) - 1
    usual = np.where(
        ci < 0,
        -1,
        np.where(
            s == w.cust.main_subject[safe],
            w.cust.primary[safe],
            np.where(s == w.cust.second_subject[safe], w.cust.primary2[safe], -1),
        ),
    )
    switch = (usual < 0) | (rng.random(len(rid)) < w.cust.switch_p[safe] * np.where(fading, 2, 1))
    _, btid, bat, _, _ = _epoch_rows(conn, UPCOMING_SQL, {"t1": t1}, 5)
    booked = (w.tutor_index(btid.astype(np.int64)), bat.astype(np.int64))
    ok = (ci >= 0) & (s >= 0) & (s < m.catalog().n) & (at > t1 + HOUR)
    tutor, sched = match(
        rng,
        w.tutors,
        usual,
        np.clip(s, 0, m.catalog().n - 1),
        switch,
        at.astype(np.int64),
        created.astype(np.int64),
        np.full(len(rid), t1 + HOUR),
        np.full(len(rid), t1 + 21 * DAY),
        booked,
    )
    tutor = np.where(ok, tutor, -1)
    got = tutor >= 0
    when = stamps(rng, len(rid), lo, t1)
    ses_id = alloc_ids(conn, "tutoring_sessions", int(got.sum()))
    seen = {
        r[0]
        for r in conn.execute(
            "select distinct customer_id from tutoring_sessions where customer_id = any(%s)",
            (cid[got].astype(int).tolist(),),
        ).fetchall()
    }
    insert_rows(
        conn,
        "tutoring_sessions",
        {
            "id": ses_id,
            "customer_id": cid[got].astype(np.int64),
            "tutor_id": w.tutor_ids[tutor[got]],
            "subject_id": subj[got].astype(np.int64),
            "session_request_id": rid[got].astype(np.int64),
            "scheduled_at": sched[got],
            "duration_minutes": rng.choice(DURATIONS, int(got.sum()), p=[0.15, 0.25, 0.5, 0.1]),
            "status": np.full(got.sum(), "scheduled", dtype=object),
            "is_first_session": np.array([c not in seen for c in cid[got]], dtype=bool),
            "created_at": when[got],
            "updated_at": when[got],
        },
    )
    link = np.full(len(rid), UNSET)
    link[got] = ses_id
    update_rows(
        conn,
        "session_requests",
        {
            "id": rid.astype(np.int64),
            "status": np.where(got, "matched", "unfilled").astype(object),
            "tutoring_session_id": link,
            "updated_at": when,
        },
    )
    return {"requests_matched": int(got.sum()), "requests_unfilled": int((~got).sum())}

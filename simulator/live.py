"""Live mode: keep the marketplace running at wall-clock time on the same latent model.

Every tick covers the wall-clock interval (t0, t1] and writes what happened in it: new session
requests (matched a minute later), sessions completing, being rated or cancelled, new customers,
customers whose churn has become official, support calls and their resolution. Inserted and
updated rows carry timestamps inside the tick, never before the newest `updated_at` already in
the database, so incremental readers (watermark on updated_at) see every change.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
import psycopg
from psycopg import sql

from simulator import generator as g
from simulator import model as m
from simulator.model import DAY, HOUR

if TYPE_CHECKING:
    from simulator import scenarios


@dataclass
class World:
    """What live mode knows: the generation's parameters, tutors, and customers still active."""

    seed: int
    scale: int
    days: int
    history_end: int
    tutor_ids: np.ndarray
    tutors: m.Tutors
    ids: np.ndarray  # customer ids, parallel to `cust`
    cust: m.Customers
    loaded_at: float = 0.0  # monotonic time of the last full customer reload

    def tutor_index(self, tutor_id: np.ndarray) -> np.ndarray:
        return index_of(self.tutor_ids, tutor_id)

    def customer_index(self, customer_id: np.ndarray) -> np.ndarray:
        return index_of(self.ids, customer_id)


def index_of(sorted_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in `sorted_ids`, -1 where absent."""
    if not len(sorted_ids):
        return np.full(len(values), -1)
    pos = np.minimum(np.searchsorted(sorted_ids, values), len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == values, pos, -1)


RELOAD_SECONDS = 300  # between full reloads of the customers (a few seconds at S10)


def _cols(rows: list[tuple], n: int) -> list[np.ndarray]:
    if not rows:
        return [np.zeros(0) for _ in range(n)]
    return [np.array(c) for c in zip(*rows, strict=True)]


def load_tutors(conn: psycopg.Connection) -> tuple[np.ndarray, m.Tutors]:
    rows = conn.execute(
        "select t.id, t.status = 'active' and t.deleted_at is null, coalesce(q.quality, 0.7), "
        "coalesce(q.no_show_rate, 0.03), coalesce(t.hourly_rate_cents, 3500), "
        "extract(epoch from coalesce(t.hired_at, t.created_at))::bigint "
        "from tutors t left join truth.tutor_quality q on q.tutor_id = t.id order by t.id"
    ).fetchall()
    ids, active, quality, no_show, rate, hired = _cols(rows, 6)
    n, n_subjects = len(ids), m.catalog().n
    tutors = m.Tutors(
        quality=quality.astype(float),
        no_show_rate=no_show.astype(float),
        hourly_rate_cents=rate.astype(int),
        hired_at=hired.astype(np.int64),
        active=active.astype(bool),
        teach=np.zeros((n, n_subjects), dtype=bool),
        avail=np.zeros((n, 7, 24), dtype=bool),
    )
    world_ids = ids.astype(np.int64)
    ts = conn.execute("select tutor_id, subject_id from tutor_subjects").fetchall()
    for tid, sid in ts:
        pos = np.searchsorted(world_ids, tid)
        if pos < n and world_ids[pos] == tid and 1 <= sid <= n_subjects:
            tutors.teach[pos, sid - 1] = True
    blocks = conn.execute(
        "select tutor_id, day_of_week, start_hour, end_hour from tutor_availabilities"
    ).fetchall()
    for tid, dow, lo, hi in blocks:
        pos = np.searchsorted(world_ids, tid)
        if pos < n and world_ids[pos] == tid and 0 <= dow <= 6:
            tutors.avail[pos, dow, max(lo, 0) : min(hi, 24)] = tutors.active[pos]
    return world_ids, tutors


CUSTOMER_SQL = """
select l.customer_id, extract(epoch from c.signed_up_at)::bigint, l.utc_offset, l.pref_local_hour,
       l.rate_per_week, l.main_subject_id, coalesce(l.second_subject_id, 0),
       coalesce(l.primary_tutor_id, 0), coalesce(l.second_tutor_id, 0), l.switch_propensity,
       l.support_propensity, l.learning_rate, extract(epoch from l.churn_at)::bigint,
       l.churn_cause, l.decline_days
from truth.customer_latent l join customers c on c.id = l.customer_id
where c.status = 'active' and c.deleted_at is null
order by l.customer_id
"""


def load_world(conn: psycopg.Connection) -> World:
    gen = conn.execute(
        "select seed, scale, days, extract(epoch from history_end)::bigint "
        "from truth.generation order by id desc limit 1"
    ).fetchone()
    if gen is None:
        raise RuntimeError("no simulated marketplace here: run `opsdash sim generate` first")
    tutor_ids, tutors = load_tutors(conn)
    ids, cust = load_customers(conn, tutor_ids)
    return World(
        seed=gen[0],
        scale=gen[1],
        days=gen[2],
        history_end=gen[3],
        tutor_ids=tutor_ids,
        tutors=tutors,
        ids=ids,
        cust=cust,
        loaded_at=time.monotonic(),
    )


def refresh_customers(conn: psycopg.Connection, w: World) -> None:
    """Reload the active customers' latent traits (live mode also appends its own sign-ups)."""
    w.loaded_at = time.monotonic()
    w.ids, w.cust = load_customers(conn, w.tutor_ids)


def load_customers(
    conn: psycopg.Connection, tutor_ids: np.ndarray
) -> tuple[np.ndarray, m.Customers]:
    """Ids and latent traits of the customers who are still active."""
    c = _cols(conn.execute(CUSTOMER_SQL).fetchall(), 15)
    n = len(c[0])
    causes = np.array([m.CAUSES.index(x) for x in c[13]], dtype=np.int64) if n else c[0]
    return c[0].astype(np.int64), m.Customers(
        signup=c[1].astype(np.int64),
        channel=np.zeros(n, int),
        grade=np.zeros(n, int),
        goal=np.zeros(n, int),
        tz_offset=c[2].astype(int),
        pref_hour=c[3].astype(int),
        rate=c[4].astype(float),
        main_subject=c[5].astype(int) - 1,
        second_subject=c[6].astype(int) - 1,
        primary=index_of(tutor_ids, c[7].astype(np.int64)),
        primary2=index_of(tutor_ids, c[8].astype(np.int64)),
        switch_p=c[9].astype(float),
        support_p=c[10].astype(float),
        learning=c[11].astype(float),
        churn_at=c[12].astype(np.int64),
        cause=causes.astype(np.int64),
        decline_days=c[14].astype(float),
    )


# ---------------------------------------------------------------- row writing helpers
def alloc_ids(conn: psycopg.Connection, table: str, n: int) -> np.ndarray:
    rows = conn.execute(
        "select nextval(pg_get_serial_sequence(%s, 'id')) from generate_series(1, %s)", (table, n)
    ).fetchall()
    return np.array([r[0] for r in rows], dtype=np.int64)


def insert_rows(conn: psycopg.Connection, table: str, cols: dict[str, np.ndarray]) -> int:
    n = len(next(iter(cols.values())))
    if n:
        g.copy_table(conn, table, cols)
    return n


def update_rows(conn: psycopg.Connection, table: str, cols: dict[str, np.ndarray]) -> int:
    """Set columns of rows by id; updated_at never goes below created_at."""
    n = len(cols["id"])
    if not n:
        return 0
    names = list(cols)
    tmp = sql.Identifier("_sim_update")
    conn.execute(
        sql.SQL("create temp table {} as select {} from {} limit 0").format(
            tmp, sql.SQL(", ").join(map(sql.Identifier, names)), g.ident(table)
        )
    )
    g.copy_table(conn, "_sim_update", cols)
    sets = [
        sql.SQL("{} = u.{}").format(sql.Identifier(c), sql.Identifier(c))
        for c in names
        if c not in ("id", "updated_at")
    ]
    sets.append(sql.SQL("updated_at = greatest(u.updated_at, t.created_at)"))
    conn.execute(
        sql.SQL("update {} t set {} from {} u where t.id = u.id").format(
            g.ident(table), sql.SQL(", ").join(sets), tmp
        )
    )
    conn.execute(sql.SQL("drop table {}").format(tmp))
    return n


def stamps(rng: np.random.Generator, n: int, t0: int, t1: int) -> np.ndarray:
    """Sorted timestamps inside the tick (t0, t1]."""
    return np.sort(rng.integers(t0 + 1, t1 + 1, n)) if t1 > t0 else np.full(n, t1)


def watermark(conn: psycopg.Connection, t1: int) -> int:
    """The newest updated_at at or before t1 among the tables live mode writes."""
    best = 0
    for table in ("tutoring_sessions", "session_requests", "customers", "support.inbound_calls"):
        row = conn.execute(
            sql.SQL(
                "select extract(epoch from max(updated_at))::bigint from {} "
                "where updated_at <= to_timestamp(%s)"
            ).format(g.ident(table)),
            (t1,),
        ).fetchone()
        best = max(best, row[0] or 0)
    return best


# ---------------------------------------------------------------- what happens in a tick
def _epoch_rows(
    conn: psycopg.Connection, query: str, params: tuple | dict, n: int
) -> list[np.ndarray]:
    return _cols(conn.execute(query, params).fetchall(), n)


def _traits(w: World, customer_id: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, ...]:
    """Index into the active customers (-1: gone), and who is fading / a bad-sessions churner."""
    ci = w.customer_index(customer_id.astype(np.int64))
    known = ci >= 0
    if not w.cust.n:
        return ci, known, known
    safe = np.maximum(ci, 0)
    return ci, known & m.declining(w.cust, safe, at), known & (w.cust.cause[safe] == m.BAD)


def _quality(w: World, tutor_id: np.ndarray, fx: scenarios.Effects) -> tuple[np.ndarray, ...]:
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
    fx: scenarios.Effects,
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
    tutor, sched = g.match(
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
            "duration_minutes": rng.choice(g.DURATIONS, int(got.sum()), p=[0.15, 0.25, 0.5, 0.1]),
            "status": np.full(got.sum(), "scheduled", dtype=object),
            "is_first_session": np.array([c not in seen for c in cid[got]], dtype=bool),
            "created_at": when[got],
            "updated_at": when[got],
        },
    )
    link = np.full(len(rid), g.UNSET)
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


def _booking_times(
    rng: np.random.Generator, cust: m.Customers, who: np.ndarray, created: np.ndarray
) -> np.ndarray:
    """When customers booking at `created` want their session (as in the history)."""
    k = len(who)
    lead = np.where(
        rng.random(k) < 0.5, rng.uniform(48, 240, k), 1 + np.minimum(rng.gamma(1.2, 20, k), 14 * 24)
    )
    at = g.local_start(rng, cust, who, created + (lead * HOUR).astype(np.int64))
    return np.where(at < created + 2 * HOUR, at + DAY, at)


def new_requests(
    conn: psycopg.Connection,
    w: World,
    rng: np.random.Generator,
    lo: int,
    t1: int,
    dt: float,
    fx: scenarios.Effects,
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
) -> dict[str, np.ndarray]:
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
    full, email = g.names(rng, n, ids, "example.com")
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
    rate_scale = float(row.fetchone()[0] or 1.0)
    insert_rows(conn, "truth.customer_latent", g.latent_columns(cust, w.tutor_ids, rate_scale, ids))
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
            "churn_cause": np.where(churned, np.array(m.CAUSES, dtype=object)[cust.cause], None),
            "churned_at": np.where(churned, cust.churn_at, g.UNSET),
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


def new_calls(
    conn: psycopg.Connection,
    w: World,
    rng: np.random.Generator,
    lo: int,
    t1: int,
    dt: float,
    fx: scenarios.Effects,
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
        rng.choice(6, len(who), p=g.SUPPORT_REASON_P),
        rng.choice(6, len(who), p=g.BASE_REASON_P),
    )
    hurt = [
        r[0]
        for r in conn.execute(
            "select customer_id from tutoring_sessions where no_show_by = 'tutor' "
            "and customer_id is not null and updated_at > to_timestamp(%s) "
            "and updated_at <= to_timestamp(%s)",
            (lo, t1),
        ).fetchall()
    ]
    hurt = np.array([h for h in hurt if rng.random() < 0.35], dtype=np.int64)
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
        "reason_code": g.REASONS[reason].astype(object),
        "channel": g.CHANNELS[channel],
        "duration_seconds": np.where(channel == 2, g.UNSET, dur),
        "resolved": np.zeros(k, dtype=bool),
        "called_at": called,
        "created_at": created,
        "updated_at": created,
    }


# ---------------------------------------------------------------- one tick
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
    from simulator.scenarios import active_effects  # scenarios builds on this module

    fx = active_effects(conn, t1)
    return {
        **settle_sessions(conn, w, rng, lo, t1, dt, fx),
        **match_pending(conn, w, rng, lo, t1),
        **new_requests(conn, w, rng, lo, t1, dt, fx),
        **new_customers(conn, w, rng, lo, t1, dt),
        **customer_status(conn, rng, lo, t1),
        **new_calls(conn, w, rng, lo, t1, dt, fx),
    }


def run_live(
    url: str, *, interval: float, speed: float, once: bool, echo: Callable[[str], None] = print
) -> None:
    """Tick every `interval` seconds until SIGTERM/SIGINT (or once)."""
    stop = threading.Event()
    if not once and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    with psycopg.connect(url) as conn:
        world = load_world(conn)
        conn.commit()
    t_prev = int(time.time() - interval)
    while True:
        t1 = int(time.time())
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

"""What live mode knows about the marketplace: the generation, tutors and active customers,
loaded back from the source database (truth.* holds the latent traits)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import psycopg

from simulator import model as m
from simulator.live_rows import columns_of


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


@dataclass
class Effects:
    """What active scenarios change in live mode right now (`scenarios.active_effects` fills it;
    the live writers read it on every tick)."""

    demand: dict[int, tuple[float, int]] = field(default_factory=dict)  # subject -> factor, until
    calls: float = 1.0
    no_show: dict[int, float] = field(default_factory=dict)  # tutor_id -> no-show rate
    quiet: set[int] = field(default_factory=set)  # customer ids that stopped booking


def index_of(sorted_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in `sorted_ids`, -1 where absent."""
    if not len(sorted_ids):
        return np.full(len(values), -1)
    pos = np.minimum(np.searchsorted(sorted_ids, values), len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == values, pos, -1)


def load_tutors(conn: psycopg.Connection) -> tuple[np.ndarray, m.Tutors]:
    rows = conn.execute(
        "select t.id, t.status = 'active' and t.deleted_at is null, coalesce(q.quality, 0.7), "
        "coalesce(q.no_show_rate, 0.03), coalesce(t.hourly_rate_cents, 3500), "
        "extract(epoch from coalesce(t.hired_at, t.created_at))::bigint "
        "from tutors t left join truth.tutor_quality q on q.tutor_id = t.id order by t.id"
    ).fetchall()
    ids, active, quality, no_show, rate, hired = columns_of(rows, 6)
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
    c = columns_of(conn.execute(CUSTOMER_SQL).fetchall(), 15)
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

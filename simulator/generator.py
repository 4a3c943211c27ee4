"""History: turn the latent model into the marketplace's rows for `days` before `history_end`.

`simulate()` is pure numpy (deterministic for a seed) and returns every table as columns;
`generate()` (at the bottom) streams them into PostgreSQL with binary COPY.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
from psycopg import sql

from simulator import model as m
from simulator.model import DAY, HOUR

# fmt: off
FIRST_NAMES = np.array([
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas",
    "Mia", "Mateo", "Amelia", "Benjamin", "Harper", "Ethan", "Evelyn", "Aiden", "Luna",
    "Oliver", "Camila", "Sebastian", "Aria", "Jackson", "Priya", "Wei", "Fatima", "Diego",
    "Chloe", "Kenji", "Zoe", "Omar"
])
LAST_NAMES = np.array([
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Clark",
    "Lewis", "Nguyen", "Patel", "Kim", "Chen"
])
REASONS = np.array(["billing", "scheduling", "tutor_quality", "technical",
                    "cancellation_request", "other"])
BASE_REASON_P = [0.3, 0.25, 0.05, 0.2, 0.05, 0.15]
SUPPORT_REASON_P = [0.35, 0.2, 0.0, 0.3, 0.0, 0.15]
CHANNELS = np.array(["phone", "chat", "email"])
DURATIONS = np.array([30, 45, 60, 90])
# fmt: on
REQUEST_CANCEL_P = 0.015  # requests the customer withdraws before a tutor is found
UNSET = np.iinfo(np.int64).min  # "NULL" in integer and time columns
PARTIES = (None, "customer", "tutor")
SHIFTS = (1, -1, 2, -2, 24, -24, 3, -3, 48, -48, 23, 25, -23, -25, 72, -72, 4, -4)  # hours


class Cat:
    """A text column as small integer codes into a vocabulary (None in it means NULL): cheap to
    build, slice and COPY. Compares to a string elementwise; `np.asarray` gives the values."""

    def __init__(self, codes: np.ndarray, vocab: tuple[str | None, ...]) -> None:
        self.codes = np.asarray(codes, dtype=np.int8)
        self.vocab = tuple(vocab)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, index: object) -> Cat:
        return Cat(self.codes[index], self.vocab)

    def __eq__(self, other: object) -> np.ndarray:  # type: ignore[override]
        return self.codes == (self.vocab.index(other) if other in self.vocab else -1)

    def __ne__(self, other: object) -> np.ndarray:  # type: ignore[override]
        return ~(self == other)

    __hash__ = None  # type: ignore[assignment]

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        return np.array(self.vocab, dtype=object)[self.codes]


@dataclass
class History:
    """Every table of the source database (and truth.*) as ordered column arrays."""

    seed: int
    scale: int
    days: int
    history_end: int
    rate_scale: float = 1.0
    tables: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def rows(self, table: str) -> int:
        return len(next(iter(self.tables[table].values())))


def _first(mask_or_idx: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask_or_idx)


def draw_signups(rng: np.random.Generator, n: int, start: int, end: int) -> np.ndarray:
    """Sign-up times, sorted, over the year before the window and the window itself: seasonal
    (fewer in summer and on holidays) with mild growth, so the active base is near steady."""
    first = start - 365 * DAY
    grid = np.arange(first // DAY, end // DAY + 1)
    w = m.day_factors(grid, 0) * np.linspace(0.85, 1.15, len(grid))
    cum = np.concatenate([[0], np.cumsum(w)])
    x = np.interp(rng.random(n) * cum[-1], cum, np.arange(len(cum)))
    return np.sort(np.clip(grid[0] * DAY + (x * DAY).astype(np.int64), first, end - 60))


class _DayCurves:
    """Cumulative day weights per category on [day0, day1]: sampling times by inverse CDF."""

    def __init__(self, day0: int, day1: int) -> None:
        self.day0 = day0
        self.edges = np.arange(day1 - day0 + 1, dtype=float)
        days = np.arange(day0, day1)
        self.cum = [
            np.concatenate([[0], np.cumsum(m.day_factors(days, c))])
            for c in range(len(m.CATEGORY_NAMES))
        ]

    def pos(self, t: np.ndarray) -> np.ndarray:
        return np.clip((t - self.day0 * DAY) / DAY, 0, self.edges[-1])

    def weight(self, cat: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        out = np.zeros(len(cat))
        for c in np.unique(cat):
            i = cat == c
            out[i] = np.interp(self.pos(t1[i]), self.edges, self.cum[c]) - np.interp(
                self.pos(t0[i]), self.edges, self.cum[c]
            )
        return np.maximum(out, 0)

    def sample(
        self, rng: np.random.Generator, cat: np.ndarray, t0: np.ndarray, t1: np.ndarray
    ) -> np.ndarray:
        """One time per row, between t0 and t1, following the category's day curve."""
        out = np.zeros(len(cat))
        u = rng.random(len(cat))
        for c in np.unique(cat):
            i = cat == c
            lo = np.interp(self.pos(t0[i]), self.edges, self.cum[c])
            hi = np.interp(self.pos(t1[i]), self.edges, self.cum[c])
            out[i] = np.interp(lo + u[i] * (hi - lo), self.cum[c], self.edges)
        return self.day0 * DAY + out * DAY


def local_start(
    rng: np.random.Generator, cust: m.Customers, who: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """Put a session on the day of `t` at the customer's usual local hour (or a typical one)."""
    day = t.astype(np.int64) // DAY
    weekend = m.weekday(day) >= 5
    usual = rng.random(len(who)) < np.where(weekend, 0.35, 0.65)
    hour = np.where(usual, cust.pref_hour[who], -1)
    for flag in (False, True):
        i = _first((weekend == flag) & (hour < 0))
        hour[i] = rng.choice(24, len(i), p=m.hour_profile(flag))
    minute = np.where(rng.random(len(who)) < 0.2, 30, 0)
    offset = cust.tz_offset[who] + m.dst_mask(day)
    return day * DAY + hour * HOUR + minute * 60 - offset * HOUR


class _Slots:
    """Taken tutor-hours, as a bitmap over the hours the bookings can move to."""

    def __init__(self, n_tutors: int, first: int, last: int) -> None:
        self.h0 = first // HOUR - 100  # room for the +-72 h moves
        self.span = last // HOUR + 100 - self.h0
        self.busy = np.zeros(n_tutors * self.span, dtype=bool)

    def key(self, tutor: np.ndarray, at: np.ndarray) -> np.ndarray:
        h = at // HOUR - self.h0
        ok = (tutor >= 0) & (h >= 0) & (h < self.span)
        return np.where(ok, tutor * self.span + h, -1)

    def free(self, key: np.ndarray) -> np.ndarray:
        return (key >= 0) & ~self.busy[np.maximum(key, 0)]


def _first_come(key: np.ndarray, created: np.ndarray) -> np.ndarray:
    """True for the earliest-created row of each key: the booking that gets the slot."""
    order = np.lexsort((created, key))
    win = np.ones(len(key), dtype=bool)
    win[order[1:]] = key[order[1:]] != key[order[:-1]]
    return win


def match(
    rng: np.random.Generator,
    tutors: m.Tutors,
    usual: np.ndarray,
    subject: np.ndarray,
    switch: np.ndarray,
    sched: np.ndarray,
    created: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    booked: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A tutor per booking (-1: unfilled) and its final start, one booking per tutor-hour, first
    come first served. A customer whose slot is unavailable tries the usual tutor an hour or two
    (or a day) earlier or later, then anyone free who teaches the subject. `booked` holds the
    (tutor index, start) of sessions that already occupy tutor-hours."""
    tutor = np.full(len(sched), -1)
    if not len(sched):
        return tutor, sched
    cand = m.CandidateIndex(tutors)
    sched = sched.copy()
    slots = _Slots(tutors.n, int(sched.min()), int(sched.max()))
    if booked is not None:
        key = slots.key(*booked)
        slots.busy[key[key >= 0]] = True
    lost = np.arange(len(sched))
    for delta in (0, *SHIFTS, None, None, None, None, None, None):
        at = sched[lost] + (delta or 0) * HOUR
        if delta is None:
            how = m.weekday(at // DAY) * 24 + (at % DAY) // HOUR
            try_tutor = cand.pick(rng, subject[lost], how)
            ok = (at >= lo[lost]) & (at < hi[lost])
        else:
            try_tutor = usual[lost]
            ok = ~switch[lost] & (at >= lo[lost]) & (at < hi[lost]) & (at > created[lost] + HOUR)
        key = slots.key(try_tutor, at)
        ok &= slots.free(key)
        ok &= tutors.avail[np.maximum(try_tutor, 0), m.weekday(at // DAY), (at % DAY) // HOUR]
        j = _first(ok)
        j = j[_first_come(key[j], created[lost[j]])]
        sched[lost[j]] = at[j]
        tutor[lost[j]] = try_tutor[j]
        slots.busy[key[j]] = True
        lost = np.delete(lost, j)
    return tutor, sched


def _bookings(
    rng: np.random.Generator,
    cust: m.Customers,
    tutors: m.Tutors,
    curves: _DayCurves,
    start: int,
    end: int,
    target: int,
) -> dict[str, np.ndarray]:
    """Session requests (matched or not) of every customer, calibrated to `target` sessions:
    oversample from an estimate, then thin uniformly (a second pass if supply was too short)."""
    cat = m.catalog().category[cust.main_subject]
    t0 = np.maximum(cust.signup + 2 * HOUR, start)
    expected = cust.rate / 7 * curves.weight(cat, t0, np.minimum(cust.churn_at, end))
    fade_days = np.clip(
        (np.minimum(cust.churn_at, end) - np.maximum(cust.churn_at - cust.decline_days * DAY, t0))
        / DAY,
        0,
        None,
    )
    expected = np.maximum(expected - cust.rate / 7 * 0.6 * fade_days, 0)
    scale = target * 1.3 / max(expected.sum(), 1.0)
    cols, past = _book(rng, cust, tutors, curves, start, end, scale)
    if past * (1 - REQUEST_CANCEL_P) < target:
        scale *= 1.15 * target / max(past * (1 - REQUEST_CANCEL_P), 1)
        cols, past = _book(rng, cust, tutors, curves, start, end, scale)
    thin = min(1.0, target / max(past * (1 - REQUEST_CANCEL_P), 1))
    keep = rng.random(len(cols["who"])) < thin
    cols = {name: v[keep] for name, v in cols.items()}
    cols["scale"] = np.array([scale * thin])
    return cols


def _book(
    rng: np.random.Generator,
    cust: m.Customers,
    tutors: m.Tutors,
    curves: _DayCurves,
    start: int,
    end: int,
    scale: float,
) -> tuple[dict[str, np.ndarray], int]:
    """Bookings at `scale` times the customers' rates, and how many become past sessions."""
    cat = m.catalog().category[cust.main_subject]
    t0 = np.maximum(cust.signup + 2 * HOUR, start)
    t1 = np.minimum(cust.churn_at, end + 7 * DAY)
    n = rng.poisson(cust.rate / 7 * curves.weight(cat, t0, t1) * scale)
    who = np.repeat(np.arange(cust.n), n)
    t = curves.sample(rng, cat[who], t0[who], t1[who])
    keep = rng.random(len(who)) < m.engagement(cust, who, t)
    who, t = who[keep], t[keep]
    sched = local_start(rng, cust, who, t)
    ok = (sched >= t0[who]) & (sched < t1[who])
    who, sched = who[ok], sched[ok]
    k = len(who)
    use2 = (cust.second_subject[who] >= 0) & (rng.random(k) < 0.25)
    subject = np.where(use2, cust.second_subject[who], cust.main_subject[who])
    usual = np.where(use2, cust.primary2[who], cust.primary[who])
    fading = m.declining(cust, who, sched)
    switcher = fading & (cust.cause[who] == m.SWITCH)
    p_switch = np.where(
        switcher, 4 * cust.switch_p[who] + 0.3, cust.switch_p[who] * np.where(fading, 1.5, 1.0)
    )
    switch = rng.random(k) < np.minimum(p_switch, 0.85)
    lead = np.where(
        rng.random(k) < 0.5,
        rng.uniform(48, 240, k),  # recurring bookings
        1 + np.minimum(rng.gamma(1.2, 20, k), 14 * 24),
    )
    created = sched - (lead * HOUR).astype(np.int64) - rng.integers(0, HOUR, k)
    created = np.maximum(created, cust.signup[who] + rng.integers(60, HOUR, k))
    tutor, sched = match(rng, tutors, usual, subject, switch, sched, created, t0[who], t1[who])
    tutor[rng.random(k) < 0.015] = -1
    matched_at = np.minimum(created + 60 + rng.gamma(1.5, 300, k).astype(np.int64), sched - 600)
    keep = (created <= end) & (created < sched - 1800)
    past = keep & (tutor >= 0) & (sched < end) & (matched_at <= end)
    cols = dict(
        who=who,
        subject=subject,
        sched=sched,
        tutor=tutor,
        created=created,
        matched_at=matched_at,
        dur=rng.choice(DURATIONS, k, p=[0.15, 0.25, 0.5, 0.1]),
    )
    return {name: v[keep] for name, v in cols.items()}, int(past.sum())


def _ids_by(created: np.ndarray) -> np.ndarray:
    """Rails ids follow insertion order: id of each row when rows are numbered by creation."""
    ids = np.empty(len(created), dtype=np.int64)
    ids[np.argsort(created, kind="stable")] = np.arange(1, len(created) + 1)
    return ids


def _sessions(
    rng: np.random.Generator,
    b: dict[str, np.ndarray],
    cust: m.Customers,
    tutors: m.Tutors,
    tutor_id: np.ndarray,
    start: int,
    end: int,
) -> dict[str, dict]:
    """Requests and sessions as they stand at `end`, plus the events later tables react to."""
    k = len(b["who"])
    who, tutor, sched, created, matched_at = (
        b[c] for c in ("who", "tutor", "sched", "created", "matched_at")
    )
    req_cancel = rng.random(k) < REQUEST_CANCEL_P
    has_session = (tutor >= 0) & ~req_cancel & (matched_at <= end)
    decided_at = np.minimum(created + rng.integers(HOUR, 12 * HOUR, k), sched)
    decided_at = np.where(req_cancel, created + rng.integers(60, HOUR, k), decided_at)
    pending = ~has_session & (decided_at > end)
    req_status = np.select([has_session, pending, req_cancel], [0, 1, 2], 3)
    req_updated = np.where(has_session, matched_at, np.where(pending, created, decided_at))

    s = _first(has_session)
    who_s, tut, at = who[s], tutor[s], sched[s]
    s_created = matched_at[s]
    q = tutors.quality[tut]
    fading = m.declining(cust, who_s, at)
    bad = cust.cause[who_s] == m.BAD
    p_cust, p_tut = m.cancel_probs(q, fading)
    u = rng.random(len(s))
    cancel_by = np.where(u < p_cust, 1, np.where(u < p_cust + p_tut, 2, 0))
    cancel_at = s_created + (rng.random(len(s)) * (at - s_created)).astype(np.int64)
    show = m.attendance(rng, tutors.no_show_rate[tut], fading, bad)
    done_at = at + np.where(
        show == 0, b["dur"][s] * 60 + rng.integers(0, 900, len(s)), rng.integers(900, HOUR, len(s))
    )
    rating = m.ratings(rng, q, fading, bad)
    rated_at = done_at + np.minimum(rng.exponential(6 * HOUR, len(s)), 3 * DAY).astype(np.int64)
    rated = rng.random(len(s)) < m.RATING_PROB

    cancelled = (cancel_by > 0) & (cancel_at <= end)
    done = (cancel_by == 0) & (done_at <= end)
    has_rating = done & (show == 0) & rated & (rated_at <= end)
    status = np.select([cancelled, done & (show == 0), done], [0, 1, 2], 3)
    updated = np.select([cancelled, has_rating, done], [cancel_at, rated_at, done_at], s_created)
    order = np.lexsort((at, who_s))
    first = np.zeros(len(s), dtype=bool)
    first[order] = np.concatenate([[True], who_s[order][1:] != who_s[order][:-1]])
    first &= cust.signup[who_s] >= start

    req_id = _ids_by(created)
    ses_id = _ids_by(s_created)
    req_ses = np.full(k, UNSET)
    req_ses[s] = ses_id
    requests = {
        "id": req_id,
        "customer_id": who + 1,
        "subject_id": b["subject"] + 1,
        "requested_start_at": sched,
        "status": Cat(req_status, ("matched", "pending", "cancelled", "unfilled")),
        "tutoring_session_id": req_ses,
        "created_at": created,
        "updated_at": req_updated,
    }
    sessions = {
        "id": ses_id,
        "customer_id": who_s + 1,
        "tutor_id": tutor_id[tut],
        "subject_id": b["subject"][s] + 1,
        "session_request_id": req_id[s],
        "scheduled_at": at,
        "duration_minutes": b["dur"][s],
        "status": Cat(status, ("cancelled", "completed", "no_show", "scheduled")),
        "cancelled_by": Cat(np.where(cancelled, cancel_by, 0), PARTIES),
        "no_show_by": Cat(np.where(done, np.array([0, 2, 1])[show], 0), PARTIES),
        "rating": np.where(has_rating, rating, UNSET),
        "is_first_session": first,
        "created_at": s_created,
        "updated_at": updated,
    }
    events = {  # what the support queue and goal progress react to
        "who": who_s,
        "completed": done & (show == 0),
        "done_at": done_at,
        "trouble": (done & (show == 1)) | (has_rating & (rating <= 2)),
        "tutor_cancel": cancelled & (cancel_by == 2),
        "event_at": np.where(
            cancelled, cancel_at, np.maximum(done_at, np.where(has_rating, rated_at, 0))
        ),
    }
    return {"session_requests": requests, "tutoring_sessions": sessions, "events": events}


def _calls(
    rng: np.random.Generator, cust: m.Customers, ev: dict[str, np.ndarray], start: int, end: int
) -> dict[str, np.ndarray]:
    """Inbound support calls: a steady trickle per customer, calls after bad experiences,
    a burst before support-driven churn, and cancellation requests around churn."""
    a = np.maximum(cust.signup, start)
    b = np.minimum(cust.churn_at + 10 * DAY, end)
    n = rng.poisson(0.005 * cust.support_p * np.clip((b - a) / DAY, 0, None))
    who = [np.repeat(np.arange(cust.n), n)]
    t = [a[who[0]] + (rng.random(len(who[0])) * (b - a)[who[0]]).astype(np.int64)]
    reason = [rng.choice(6, len(who[0]), p=BASE_REASON_P)]
    churning = (cust.churn_at > start) & (cust.churn_at <= end + 60 * DAY)
    extra = rng.poisson(np.where(cust.cause == m.SUPPORT, 5.0, 2.0) * churning)
    w = np.repeat(np.arange(cust.n), extra)
    who.append(w)
    t.append(
        cust.churn_at[w] - (rng.random(len(w)) * 0.8 * cust.decline_days[w] * DAY).astype(np.int64)
    )
    reason.append(rng.choice(6, len(w), p=SUPPORT_REASON_P))
    trig = _first(
        (ev["trouble"] & (rng.random(len(ev["who"])) < 0.35))
        | (ev["tutor_cancel"] & (rng.random(len(ev["who"])) < 0.25))
    )
    who.append(ev["who"][trig])
    t.append(ev["event_at"][trig] + rng.integers(HOUR // 2, 30 * HOUR, len(trig)))
    reason.append(np.where(ev["tutor_cancel"][trig], 1, 2))
    w = _first(churning & (rng.random(cust.n) < 0.4))
    who.append(w)
    t.append(cust.churn_at[w] + rng.integers(-2 * DAY, 4 * DAY, len(w)))
    reason.append(np.full(len(w), 4))
    who, t, reason = np.concatenate(who), np.concatenate(t), np.concatenate(reason)
    ok = (t >= np.maximum(cust.signup[who], start)) & (t <= end - 300)
    who, t, reason = who[ok], t[ok], reason[ok]
    k = len(who)
    channel = rng.choice(3, k, p=[0.45, 0.35, 0.2])
    dur = np.where(
        channel == 0, rng.lognormal(np.log(420), 0.6, k), rng.lognormal(np.log(700), 0.5, k)
    ).astype(np.int64)
    created = t + np.where(channel == 2, 0, dur)
    created = np.minimum(created, end)
    resolved_at = created + np.minimum(rng.exponential(5 * HOUR, k), 10 * DAY).astype(np.int64)
    resolved = (resolved_at <= end) & (rng.random(k) > 0.06)
    return {
        "id": _ids_by(created),
        "customer_id": who + 1,
        "reason_code": Cat(reason, tuple(REASONS)),
        "channel": Cat(channel, tuple(CHANNELS)),
        "duration_seconds": np.where(channel == 2, UNSET, dur),
        "resolved": resolved,
        "called_at": t,
        "created_at": created,
        "updated_at": np.where(resolved, resolved_at, created),
    }


def names(rng: np.random.Generator, n: int, ids: np.ndarray, domain: str) -> tuple[np.ndarray, ...]:
    first = FIRST_NAMES[rng.integers(0, len(FIRST_NAMES), n)]
    last = LAST_NAMES[rng.integers(0, len(LAST_NAMES), n)]
    full = np.char.add(np.char.add(first, " "), last).astype(object)
    email = [
        f"{f.lower()}.{la.lower()}{i}@{domain}" for f, la, i in zip(first, last, ids, strict=True)
    ]
    return full, np.array(email, dtype=object)


def _customers(
    rng: np.random.Generator,
    cust: m.Customers,
    ev: dict[str, np.ndarray],
    rate_scale: float,
    start: int,
    end: int,
) -> dict[str, np.ndarray]:
    """Customer rows at `end`: goal progress from completed sessions, cancellations after churn."""
    ids = np.arange(1, cust.n + 1)
    done = ev["completed"]
    completed = np.bincount(ev["who"][done], minlength=cust.n).astype(float)
    before = np.clip((np.minimum(cust.churn_at, start) - cust.signup) / DAY, 0, None)
    completed += rng.poisson(cust.rate * rate_scale / 7 * before * 0.8)
    progress = m.goal_progress(cust.learning, completed)
    last_done = np.zeros(cust.n, dtype=np.int64)
    np.maximum.at(last_done, ev["who"][done], ev["done_at"][done])
    cancel_at = cust.churn_at + m.cancel_delay_days(ids) * DAY
    cancelled = cancel_at <= end
    deleted_at = cancel_at + rng.integers(DAY, 20 * DAY, cust.n)
    deleted = cancelled & (deleted_at <= end) & (rng.random(cust.n) < 0.1)
    updated = np.maximum(cust.signup, np.minimum(last_done, end))
    updated = np.where(cancelled, np.maximum(updated, cancel_at), updated)
    updated = np.where(deleted, np.maximum(updated, deleted_at), updated)
    full, email = names(rng, cust.n, ids, "example.com")
    return {
        "id": ids,
        "email": email,
        "full_name": full,
        "grade_level": cust.grade,
        "goal": Cat(cust.goal, m.GOALS),
        "goal_progress_pct": progress,
        "acquisition_channel": Cat(cust.channel, m.CHANNELS),
        "status": Cat(cancelled.astype(np.int8), ("active", "cancelled")),
        "signed_up_at": cust.signup,
        "deleted_at": np.where(deleted, deleted_at, UNSET),
        "created_at": cust.signup,
        "updated_at": updated,
    }


def _supply(
    rng: np.random.Generator, tutors: m.Tutors, tutor_id: np.ndarray, start: int, end: int
) -> dict[str, dict[str, np.ndarray]]:
    """Tutors, subjects, who teaches what, and weekly availability blocks."""
    cat = m.catalog()
    n = tutors.n
    left_at = tutors.hired_at + (rng.random(n) * (start - tutors.hired_at)).astype(np.int64)
    edited = rng.random(n) < 0.4
    touched = np.where(
        edited, start + (rng.random(n) * (end - start)).astype(np.int64), tutors.hired_at
    )
    full, email = names(rng, n, tutor_id, "tutors.example.com")
    deleted = ~tutors.active & (rng.random(n) < 0.5)
    tutor_rows = {
        "id": tutor_id,
        "email": email,
        "full_name": full,
        "status": Cat((~tutors.active).astype(np.int8), ("active", "inactive")),
        "hourly_rate_cents": tutors.hourly_rate_cents,
        "hired_at": tutors.hired_at,
        "deleted_at": np.where(deleted, left_at, UNSET),
        "created_at": tutors.hired_at,
        "updated_at": np.where(tutors.active, touched, left_at),
    }
    t, s = np.nonzero(tutors.teach)
    ts_created = tutors.hired_at[t] + rng.integers(0, 2 * DAY, len(t))
    padded = np.pad(tutors.avail, ((0, 0), (0, 0), (1, 1)))
    step = np.diff(padded.astype(np.int8), axis=2)
    at, ad, ah = np.nonzero(step == 1)
    _, _, eh = np.nonzero(step == -1)
    av_created = tutors.hired_at[at] + rng.integers(0, 3 * DAY, len(at))
    av_updated = np.where(
        rng.random(len(at)) < 0.3,
        np.maximum(av_created, start + (rng.random(len(at)) * (end - start)).astype(np.int64)),
        av_created,
    )
    launch = np.full(cat.n, start - 3 * 365 * DAY)
    return {
        "subjects": {
            "id": np.arange(1, cat.n + 1),
            "name": np.array(cat.names, dtype=object),
            "category": Cat(cat.category, m.CATEGORY_NAMES),
            "created_at": launch,
            "updated_at": launch,
        },
        "tutors": tutor_rows,
        "tutor_subjects": {
            "id": _ids_by(ts_created),
            "tutor_id": tutor_id[t],
            "subject_id": s + 1,
            "created_at": ts_created,
            "updated_at": ts_created,
        },
        "tutor_availabilities": {
            "id": _ids_by(av_created),
            "tutor_id": tutor_id[at],
            "day_of_week": ad,
            "start_hour": ah,
            "end_hour": eh,
            "created_at": av_created,
            "updated_at": av_updated,
        },
    }


def simulate(seed: int, scale: int, days: int, history_end: int) -> History:
    """The whole marketplace history for `days` up to `history_end` (epoch seconds)."""
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    end = int(history_end)
    start = end - days * DAY
    tutors = m.draw_tutors(rngs[0], m.tutor_count(scale), start)
    tutor_id = _ids_by(tutors.hired_at)
    cust = m.draw_customers(rngs[2], draw_signups(rngs[1], scale, start, end), tutors)
    curves = _DayCurves(start // DAY - 1, end // DAY + 9)
    target = round(m.SESSIONS_PER_CUSTOMER_DAY * scale * days)
    b = _bookings(rngs[3], cust, tutors, curves, start, end, target)
    out = _sessions(rngs[4], b, cust, tutors, tutor_id, start, end)
    ev = out.pop("events")
    h = History(seed=seed, scale=scale, days=days, history_end=end)
    h.tables.update(_supply(rngs[5], tutors, tutor_id, start, end))
    h.tables["customers"] = _customers(rngs[6], cust, ev, float(b["scale"][0]), start, end)
    h.tables.update(out)
    h.tables["support.inbound_calls"] = _calls(rngs[7], cust, ev, start, end)
    churned = cust.churn_at <= end + 60 * DAY
    h.tables["truth.customer_outcomes"] = {
        "customer_id": np.arange(1, cust.n + 1),
        "churned": churned,
        "churn_cause": Cat(np.where(churned, cust.cause, len(m.CAUSES)), (*m.CAUSES, None)),
        "churned_at": np.where(churned, cust.churn_at, UNSET),
    }
    h.tables["truth.tutor_quality"] = {
        "tutor_id": tutor_id,
        "quality": tutors.quality,
        "no_show_rate": tutors.no_show_rate,
    }
    h.rate_scale = float(b["scale"][0])
    h.tables["truth.customer_latent"] = latent_columns(
        cust, tutor_id, h.rate_scale, np.arange(1, cust.n + 1)
    )
    for table, cols in h.tables.items():  # rows in key order, as the app inserted them
        order = np.argsort(next(iter(cols.values())), kind="stable")
        h.tables[table] = {name: v[order] for name, v in cols.items()}
    return h


def latent_columns(
    cust: m.Customers, tutor_id: np.ndarray, rate_scale: float, ids: np.ndarray
) -> dict[str, np.ndarray]:
    """What live mode needs to keep each customer behaving as the model says."""

    def tid(i: np.ndarray) -> np.ndarray:
        return np.where(i >= 0, tutor_id[np.maximum(i, 0)], UNSET)

    return {
        "customer_id": ids,
        "rate_per_week": cust.rate * rate_scale,
        "main_subject_id": cust.main_subject + 1,
        "second_subject_id": np.where(cust.second_subject >= 0, cust.second_subject + 1, UNSET),
        "primary_tutor_id": tid(cust.primary),
        "second_tutor_id": tid(cust.primary2),
        "utc_offset": cust.tz_offset,
        "pref_local_hour": cust.pref_hour,
        "switch_propensity": cust.switch_p,
        "support_propensity": cust.support_p,
        "learning_rate": cust.learning,
        "churn_at": cust.churn_at,
        "churn_cause": Cat(cust.cause, m.CAUSES),
        "decline_days": cust.decline_days,
    }


# ---------------------------------------------------------------- writing: binary COPY
SCHEMA_FILE = Path(__file__).with_name("schema.sql")
PG_EPOCH = 946_684_800  # 2000-01-01T00:00:00Z, where PostgreSQL's binary timestamps start
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
FIXED = {
    "bigint": ">i8",
    "integer": ">i4",
    "double precision": ">f8",
    "boolean": "?",
    "timestamp with time zone": ">i8",
}
CHUNK = 100_000
SOURCE_TABLES = (
    "subjects",
    "tutors",
    "tutor_subjects",
    "tutor_availabilities",
    "customers",
    "session_requests",
    "tutoring_sessions",
    "support.inbound_calls",
)
TRUTH_TABLES = (
    "truth.customer_outcomes",
    "truth.tutor_quality",
    "truth.customer_latent",
    "truth.scenarios",
    "truth.generation",
)


def _field(pgtype: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(length per row, -1 for NULL) and the concatenated payload bytes of one column."""
    if isinstance(values, Cat):
        raw = [v.encode() if v is not None else b"" for v in values.vocab]
        width = max(max(len(r) for r in raw), 1)
        table = np.zeros((len(raw), width), dtype=np.uint8)
        for i, r in enumerate(raw):
            table[i, : len(r)] = np.frombuffer(r, dtype=np.uint8)
        vlen = np.array(
            [len(r) if v is not None else -1 for r, v in zip(raw, values.vocab, strict=True)]
        )
        out = vlen[values.codes]
        return out, table[values.codes][np.arange(width)[None, :] < out[:, None]]
    if values.dtype == object or values.dtype.kind in "US":
        null = np.equal(values, None) if values.dtype == object else np.zeros(len(values), bool)
        raw = np.char.encode(values[~null].astype(str), "utf-8")
        width = max(raw.dtype.itemsize, 1)
        lens = np.char.str_len(raw) if len(raw) else np.zeros(0, dtype=np.int64)
        mat = np.frombuffer(raw.tobytes(), dtype=np.uint8).reshape(len(raw), width)
        data = mat[np.arange(width)[None, :] < lens[:, None]]
    else:
        if values.dtype.kind not in "iub" and pgtype != "double precision":
            raise TypeError(f"{pgtype} column given {values.dtype} values")
        null = values == UNSET if values.dtype.kind == "i" else np.zeros(len(values), bool)
        v = values[~null]
        if pgtype == "timestamp with time zone":
            v = (v - PG_EPOCH) * 1_000_000
        data = np.ascontiguousarray(v.astype(FIXED[pgtype])).view(np.uint8)
        lens = np.full(len(v), np.dtype(FIXED[pgtype]).itemsize)
    out = np.full(len(values), -1, dtype=np.int64)
    out[~null] = lens
    return out, data


def encode_rows(types: list[str], columns: list[np.ndarray]) -> bytes:
    """Rows in PostgreSQL's binary COPY format (without header/trailer), built with numpy."""
    fields = [_field(t, c) for t, c in zip(types, columns, strict=True)]
    sizes = 2 + sum(4 + np.maximum(lens, 0) for lens, _ in fields)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    buf = np.zeros(int(sizes.sum()), dtype=np.uint8)
    count = np.array([len(fields)], dtype=">i2").view(np.uint8)
    buf[starts[:, None] + np.arange(2)] = count
    pos = starts + 2
    for lens, data in fields:
        buf[pos[:, None] + np.arange(4)] = lens.astype(">i4").view(np.uint8).reshape(-1, 4)
        has = lens >= 0
        n = lens[has]
        if len(n):
            first = np.repeat(pos[has] + 4 - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
            buf[first + np.arange(len(first))] = data
        pos = pos + 4 + np.maximum(lens, 0)
    return buf.tobytes()


def ident(table: str) -> sql.Composed:
    return sql.SQL(".").join(sql.Identifier(p) for p in table.split("."))


def column_types(conn: psycopg.Connection, table: str) -> dict[str, str]:
    rows = conn.execute(
        "select attname, format_type(atttypid, atttypmod) from pg_attribute "
        "where attrelid = %s::regclass and attnum > 0 and not attisdropped order by attnum",
        (table,),
    ).fetchall()
    return dict(rows)


def copy_table(
    conn: psycopg.Connection, table: str, cols: dict[str, np.ndarray], freeze: bool = False
) -> int:
    """Stream columns into `table` with binary COPY; returns the row count."""
    types = column_types(conn, table)
    columns = list(cols)
    stmt = sql.SQL("copy {} ({}) from stdin (format binary{})").format(
        ident(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", freeze" if freeze else ""),
    )
    n = len(cols[columns[0]])
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        copy.write(COPY_HEADER)
        for lo in range(0, n, CHUNK):
            copy.write(
                encode_rows(
                    [types[c] for c in columns], [cols[c][lo : lo + CHUNK] for c in columns]
                )
            )
        copy.write(b"\xff\xff")
    return n


def with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


@contextmanager
def scratch_database(base_url: str, prefix: str) -> Iterator[str]:
    """A throw-away database on the cluster of `base_url` (same credentials), dropped after."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = with_dbname(base_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield with_dbname(base_url, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def has_data(conn: psycopg.Connection) -> bool:
    """Whether the marketplace tables exist and hold rows (then `generate` leaves them alone)."""
    tables = ("customers", "tutoring_sessions")
    for table in tables:
        exists = conn.execute("select to_regclass(%s) is not null", (table,)).fetchone()
        if (
            exists
            and exists[0]
            and conn.execute(
                sql.SQL("select exists (select 1 from {})").format(sql.Identifier(table))
            ).fetchone()[0]
        ):
            return True
    return False


def secondary_indexes() -> list[str]:
    """Qualified names of the schema's non-key indexes, dropped while COPY runs."""
    found = re.findall(r"create index if not exists (\w+) on ([\w.]+)", SCHEMA_FILE.read_text())
    return [f"{t.split('.')[0] if '.' in t else 'public'}.{name}" for name, t in found]


def utc_minute(now: float | None = None) -> int:
    return int(now if now is not None else time.time()) // 60 * 60


def write(url: str, hist: History, echo: Callable[[str], None] = print) -> int:
    """Replace the database's contents with `hist` in one transaction; returns rows written."""
    total, started = 0, time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute(SCHEMA_FILE.read_text())
        conn.execute(
            sql.SQL("truncate {} restart identity").format(
                sql.SQL(", ").join(ident(t) for t in SOURCE_TABLES + TRUTH_TABLES)
            )
        )
        conn.execute("set local maintenance_work_mem = '256MB'")
        for index in secondary_indexes():
            conn.execute(sql.SQL("drop index if exists {}").format(ident(index)))
        for table, cols in hist.tables.items():
            t = time.perf_counter()
            n = copy_table(conn, table, cols, freeze=True)
            dt = max(time.perf_counter() - t, 1e-6)
            total += n
            echo(f"  {table:<28} {n:>10,} rows {dt:7.2f}s {n / dt:>12,.0f} rows/s")
        t = time.perf_counter()
        conn.execute(SCHEMA_FILE.read_text())  # recreates the dropped indexes
        echo(f"  indexes rebuilt in {time.perf_counter() - t:.2f}s")
        for table in (*SOURCE_TABLES, "truth.scenarios", "truth.generation"):
            conn.execute(
                sql.SQL(
                    "select setval(pg_get_serial_sequence(%s, 'id'), "
                    "coalesce((select max(id) from {}), 0) + 1, false)"
                ).format(ident(table)),
                (table,),
            )
        conn.execute(
            "insert into truth.generation (seed, scale, days, history_end, rate_scale) "
            "values (%s, %s, %s, %s, %s)",
            (
                hist.seed,
                hist.scale,
                hist.days,
                datetime.fromtimestamp(hist.history_end, UTC),
                hist.rate_scale,
            ),
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("analyze")
    dt = time.perf_counter() - started
    echo(f"  wrote {total:,} rows in {dt:.1f}s ({total / dt:,.0f} rows/s)")
    return total


def generate(
    url: str,
    *,
    scale: int,
    days: int,
    seed: int,
    replace: bool = False,
    history_end: int | None = None,
    echo: Callable[[str], None] = print,
) -> History | None:
    """Simulate and write a marketplace history; None when data exists and `replace` is off."""
    with psycopg.connect(url) as conn:
        if has_data(conn) and not replace:
            echo(
                "the source database already holds marketplace data: nothing written "
                "(use --replace to regenerate)"
            )
            return None
    end = history_end if history_end is not None else utc_minute()
    t = time.perf_counter()
    hist = simulate(seed, scale, days, end)
    echo(
        f"simulated {scale:,} customers x {days} days (seed {seed}, history ends "
        f"{datetime.fromtimestamp(end, UTC).isoformat()}) in {time.perf_counter() - t:.1f}s"
    )
    write(url, hist, echo)
    return hist

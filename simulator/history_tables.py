"""The source tables as they stand at the end of the history, built from the latent model and
the bookings: requests and sessions, support calls, customers, and the tutor supply."""

from __future__ import annotations

import numpy as np

from simulator import model as m
from simulator.bookings import REQUEST_CANCEL_P
from simulator.columns import (
    BASE_REASON_P,
    CHANNELS,
    REASONS,
    SUPPORT_REASON_P,
    UNSET,
    Cat,
    Column,
    ids_by,
    names,
)
from simulator.model import DAY, HOUR

PARTIES = (None, "customer", "tutor")


def session_tables(
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

    s = np.flatnonzero(has_session)
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

    req_id = ids_by(created)
    ses_id = ids_by(s_created)
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


def call_table(
    rng: np.random.Generator, cust: m.Customers, ev: dict[str, np.ndarray], start: int, end: int
) -> dict[str, Column]:
    """Inbound support calls: a steady trickle per customer, calls after bad experiences,
    a burst before support-driven churn, and cancellation requests around churn."""
    a = np.maximum(cust.signup, start)
    b = np.minimum(cust.churn_at + 10 * DAY, end)
    n = rng.poisson(0.005 * cust.support_p * np.clip((b - a) / DAY, 0, None))
    steady = np.repeat(np.arange(cust.n), n)
    who_parts = [steady]
    t_parts = [a[steady] + (rng.random(len(steady)) * (b - a)[steady]).astype(np.int64)]
    reason_parts = [rng.choice(6, len(steady), p=BASE_REASON_P)]
    churning = (cust.churn_at > start) & (cust.churn_at <= end + 60 * DAY)
    extra = rng.poisson(np.where(cust.cause == m.SUPPORT, 5.0, 2.0) * churning)
    w = np.repeat(np.arange(cust.n), extra)
    who_parts.append(w)
    t_parts.append(
        cust.churn_at[w] - (rng.random(len(w)) * 0.8 * cust.decline_days[w] * DAY).astype(np.int64)
    )
    reason_parts.append(rng.choice(6, len(w), p=SUPPORT_REASON_P))
    trig = np.flatnonzero(
        (ev["trouble"] & (rng.random(len(ev["who"])) < 0.35))
        | (ev["tutor_cancel"] & (rng.random(len(ev["who"])) < 0.25))
    )
    who_parts.append(ev["who"][trig])
    t_parts.append(ev["event_at"][trig] + rng.integers(HOUR // 2, 30 * HOUR, len(trig)))
    reason_parts.append(np.where(ev["tutor_cancel"][trig], 1, 2))
    w = np.flatnonzero(churning & (rng.random(cust.n) < 0.4))
    who_parts.append(w)
    t_parts.append(cust.churn_at[w] + rng.integers(-2 * DAY, 4 * DAY, len(w)))
    reason_parts.append(np.full(len(w), 4))
    who = np.concatenate(who_parts)
    t = np.concatenate(t_parts)
    reason = np.concatenate(reason_parts)
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
        "id": ids_by(created),
        "customer_id": who + 1,
        "reason_code": Cat(reason, tuple(REASONS)),
        "channel": Cat(channel, tuple(CHANNELS)),
        "duration_seconds": np.where(channel == 2, UNSET, dur),
        "resolved": resolved,
        "called_at": t,
        "created_at": created,
        "updated_at": np.where(resolved, resolved_at, created),
    }


def customer_table(
    rng: np.random.Generator,
    cust: m.Customers,
    ev: dict[str, np.ndarray],
    rate_scale: float,
    start: int,
    end: int,
) -> dict[str, Column]:
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


def supply_tables(
    rng: np.random.Generator, tutors: m.Tutors, tutor_id: np.ndarray, start: int, end: int
) -> dict[str, dict[str, Column]]:
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
    tutor_rows: dict[str, Column] = {
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
            "id": ids_by(ts_created),
            "tutor_id": tutor_id[t],
            "subject_id": s + 1,
            "created_at": ts_created,
            "updated_at": ts_created,
        },
        "tutor_availabilities": {
            "id": ids_by(av_created),
            "tutor_id": tutor_id[at],
            "day_of_week": ad,
            "start_hour": ah,
            "end_hour": eh,
            "created_at": av_created,
            "updated_at": av_updated,
        },
    }

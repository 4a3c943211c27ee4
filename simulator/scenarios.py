"""Scenario injection: incidents with a known start, so alerts and models can be scored.

Each scenario records a row in truth.scenarios (name, parameters, started_at) and writes its
rows at once (`updated_at` = now, so incremental readers pick them up). Demand spikes, support
surges, tutor no-show streaks and quiet customers also last `hours`: live mode reads `active_effects()` on every
tick and keeps them going.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from opsdash_core.db import first_row
from simulator import model as m
from simulator.columns import UNSET
from simulator.live_calls import call_rows
from simulator.live_customers import request_rows
from simulator.live_rows import alloc_ids, insert_rows, stamps, update_rows
from simulator.live_sessions import match_pending
from simulator.live_world import Effects, World, load_world
from simulator.model import DAY, HOUR

SURGE_REASON_P = [0.3, 0.15, 0.05, 0.4, 0.0, 0.1]
DEFECTS = ("rating_out_of_range", "null_customer_id", "unknown_tutor_id", "future_timestamps")


class ScenarioError(ValueError):
    """The scenario cannot run as asked (unknown subject or tutor, no marketplace yet)."""


def active_effects(conn: psycopg.Connection, at: int) -> Effects:
    fx = Effects()
    rows = conn.execute(
        "select scenario, params, extract(epoch from started_at)::bigint from truth.scenarios "
        "where started_at <= to_timestamp(%s) and started_at > to_timestamp(%s) order by id",
        (at, at - 60 * DAY),
    ).fetchall()
    for scenario, params, started in rows:
        until = started + int(float(params.get("hours", 0)) * HOUR)
        if until <= at:
            continue
        if scenario == "demand-spike":
            fx.demand[int(params["subject_id"])] = (float(params["factor"]), until)
        elif scenario == "support-surge":
            fx.calls *= float(params["factor"])
        elif scenario == "tutor-no-shows":
            fx.no_show[int(params["tutor_id"])] = float(params["rate"])
        elif scenario == "customer-quiet":
            fx.quiet.update(int(c) for c in params["customer_ids"])
    return fx


def record(conn: psycopg.Connection, scenario: str, params: dict, now: int) -> int:
    row = conn.execute(
        "insert into truth.scenarios (scenario, params, started_at) "
        "values (%s, %s, to_timestamp(%s)) returning id",
        (scenario, Jsonb(params), now),
    )
    return int(first_row(row)[0])


def _world(conn: psycopg.Connection, now: int, salt: int) -> tuple[World, np.random.Generator]:
    w = load_world(conn)
    return w, np.random.default_rng([w.seed, now, salt])


def demand_spike(
    conn: psycopg.Connection,
    subject: str,
    factor: float,
    hours: float,
    now: int,
    echo: Callable[[str], None] = print,
) -> dict[str, int]:
    """`factor` times the subject's normal demand for the next `hours`: a burst of requests made
    in the past hour for sessions in that window, matched where tutors are free."""
    row = conn.execute(
        "select id, name from subjects where lower(name) = lower(%s)", (subject,)
    ).fetchone()
    if row is None:
        known = ", ".join(r[0] for r in conn.execute("select name from subjects order by id"))
        raise ScenarioError(f"unknown subject {subject!r}; subjects: {known}")
    sid, name = row
    w, rng = _world(conn, now, 1)
    per_hour = conn.execute(
        "select count(*) / 168.0 from session_requests where subject_id = %s "
        "and created_at > to_timestamp(%s)",
        (sid, now - 7 * DAY),
    )
    per_hour = first_row(per_hour)[0]
    extra = max(round((factor - 1) * float(per_hour) * hours), 4 * int(np.ceil(hours)))
    c = w.cust
    if not c.n:
        raise ScenarioError("no active customers to create demand for")
    likes = (c.main_subject == sid - 1) | (c.second_subject == sid - 1)
    p = (c.rate + 0.1) * np.where(likes, 5.0, 1.0)
    who = rng.choice(c.n, extra, p=p / p.sum())
    created = stamps(rng, extra, now - HOUR, now - 60)
    at = (now + rng.integers(90 * 60, int(max(hours, 2) * HOUR), extra)) // 1800 * 1800
    cols = request_rows(conn, w.ids[who], np.full(extra, sid), at, created)
    cols["updated_at"] = np.full(extra, now)
    insert_rows(conn, "session_requests", cols)
    sc = record(
        conn,
        "demand-spike",
        {"subject": name, "subject_id": sid, "factor": factor, "hours": hours},
        now,
    )
    counts = match_pending(conn, w, rng, now - 1, now)
    echo(
        f"demand-spike #{sc}: {extra} extra '{name}' requests for the next {hours:g}h "
        f"({counts.get('requests_matched', 0)} matched, "
        f"{counts.get('requests_unfilled', 0)} unfilled); live mode keeps x{factor:g}"
    )
    return {"scenario_id": sc, "requests": extra, **counts}


def tutor_no_shows(
    conn: psycopg.Connection,
    tutor_id: int,
    rate: float,
    hours: float,
    now: int,
    echo: Callable[[str], None] = print,
) -> dict[str, int]:
    """The tutor stops showing up: recent sessions (last 72 h) turn into tutor no-shows at
    `rate`, and live mode keeps that rate for `hours`."""
    if conn.execute("select 1 from tutors where id = %s", (tutor_id,)).fetchone() is None:
        raise ScenarioError(f"no tutor with id {tutor_id}")
    w, rng = _world(conn, now, 2)
    sc = record(conn, "tutor-no-shows", {"tutor_id": tutor_id, "rate": rate, "hours": hours}, now)
    ids = np.array(
        [
            r[0]
            for r in conn.execute(
                "select id from tutoring_sessions where tutor_id = %s "
                "and status in ('completed', 'scheduled') and scheduled_at >= to_timestamp(%s) "
                "and scheduled_at + make_interval(mins => coalesce(duration_minutes, 60)) "
                "<= to_timestamp(%s) order by id",
                (tutor_id, now - 72 * HOUR, now),
            ).fetchall()
        ],
        dtype=np.int64,
    )
    flip = ids[rng.random(len(ids)) < rate]
    k = len(flip)
    update_rows(
        conn,
        "tutoring_sessions",
        {
            "id": flip,
            "status": np.full(k, "no_show", dtype=object),
            "no_show_by": np.full(k, "tutor", dtype=object),
            "rating": np.full(k, UNSET),
            "updated_at": np.full(k, now),
        },
    )
    added = max(0, 3 - k)  # a visible streak even for a tutor with few recent sessions
    if added:
        ti = w.tutor_index(np.array([tutor_id]))[0]
        taught = np.flatnonzero(w.tutors.teach[ti]) + 1 if ti >= 0 else np.array([1])
        at = (now - rng.integers(2 * HOUR, 48 * HOUR, added)) // HOUR * HOUR
        customers = rng.choice(w.ids, added) if len(w.ids) else np.ones(added, dtype=np.int64)
        insert_rows(
            conn,
            "tutoring_sessions",
            {
                "id": alloc_ids(conn, "tutoring_sessions", added),
                "customer_id": customers,
                "tutor_id": np.full(added, tutor_id),
                "subject_id": rng.choice(taught, added),
                "scheduled_at": at,
                "duration_minutes": np.full(added, 60),
                "status": np.full(added, "no_show", dtype=object),
                "no_show_by": np.full(added, "tutor", dtype=object),
                "is_first_session": np.zeros(added, dtype=bool),
                "created_at": at - 2 * DAY,
                "updated_at": np.full(added, now),
            },
        )
    echo(
        f"tutor-no-shows #{sc}: tutor {tutor_id} missed {k} of {len(ids)} recent sessions "
        f"(+{added} new no-shows); live mode keeps a {rate:.0%} no-show rate for {hours:g}h"
    )
    return {"scenario_id": sc, "flipped": k, "added": added}


def support_surge(
    conn: psycopg.Connection,
    factor: float,
    hours: float,
    now: int,
    echo: Callable[[str], None] = print,
) -> dict[str, int]:
    """`factor` times the usual inbound calls: the past hour's extra calls now, and live mode
    keeps the multiplier for `hours`."""
    w, rng = _world(conn, now, 3)
    per_hour = conn.execute(
        "select count(*) / 168.0 from support.inbound_calls where called_at > to_timestamp(%s)",
        (now - 7 * DAY,),
    )
    per_hour = first_row(per_hour)[0]
    extra = max(round((factor - 1) * float(per_hour)), 10)
    c = w.cust
    if not c.n:
        raise ScenarioError("no active customers to call support")
    who = rng.choice(c.n, extra, p=c.support_p / c.support_p.sum())
    cols = call_rows(rng, conn, w.ids[who], rng.choice(6, extra, p=SURGE_REASON_P), now - HOUR, now)
    cols["updated_at"] = np.full(extra, now)
    insert_rows(conn, "support.inbound_calls", cols)
    sc = record(conn, "support-surge", {"factor": factor, "hours": hours}, now)
    echo(
        f"support-surge #{sc}: {extra} extra inbound calls in the past hour; "
        f"live mode keeps x{factor:g} for {hours:g}h"
    )
    return {"scenario_id": sc, "calls": extra}


def customer_quiet(
    conn: psycopg.Connection,
    customers: int,
    hours: float,
    now: int,
    echo: Callable[[str], None] = print,
    customer_ids: list[int] | None = None,
) -> dict[str, object]:
    """Customers stop coming: their pending requests are withdrawn, the sessions they had booked
    from now on are cancelled (by the customer, as of now), and live mode writes no new request
    of theirs for `hours`. By default the `customers` busiest active customers (most sessions in
    the last 30 days) go quiet; `customer_ids` names them instead (active ones only).

    The churn-risk rules see a customer go quiet mostly as days without sessions pass (an
    absence), but the cancelled bookings count at once: a customer with nothing booked any
    more loses the halving of the recency risk, and one with no session for weeks and nothing
    booked is forced to the high tier (marts.customer_health)."""
    w, _rng = _world(conn, now, 5)
    if not len(w.ids):
        raise ScenarioError("no active customers to go quiet")
    if customer_ids:
        active = set(w.ids.tolist())
        chosen = [int(c) for c in dict.fromkeys(customer_ids) if int(c) in active]
        if len(chosen) < len(set(customer_ids)):
            unknown = sorted(set(customer_ids) - set(chosen))
            raise ScenarioError(f"not active customers: {unknown[:8]}")
    else:
        chosen = [
            int(r[0])
            for r in conn.execute(
                "select customer_id from tutoring_sessions where customer_id = any(%s) "
                "and scheduled_at > to_timestamp(%s) and scheduled_at <= to_timestamp(%s) "
                "group by customer_id order by count(*) desc, customer_id limit %s",
                (w.ids.tolist(), now - 30 * DAY, now, customers),
            ).fetchall()
        ]
    if not chosen:
        raise ScenarioError("no active customer had a session in the last 30 days")
    withdrawn = conn.execute(
        "update session_requests set status = 'cancelled', updated_at = to_timestamp(%s) "
        "where customer_id = any(%s) and status = 'pending'",
        (now, chosen),
    ).rowcount
    cancelled = conn.execute(
        "update tutoring_sessions set status = 'cancelled', cancelled_by = 'customer', "
        "updated_at = to_timestamp(%s) "
        "where customer_id = any(%s) and status = 'scheduled' and scheduled_at > to_timestamp(%s)",
        (now, chosen, now),
    ).rowcount
    sc = record(
        conn,
        "customer-quiet",
        {"customer_ids": chosen, "hours": hours, "cancelled_sessions": cancelled},
        now,
    )
    echo(
        f"customer-quiet #{sc}: {len(chosen)} customers stop booking for {hours:g}h "
        f"({withdrawn} pending requests withdrawn, {cancelled} booked sessions cancelled); "
        f"ids {chosen[:8]}{' ...' if len(chosen) > 8 else ''}"
    )
    return {
        "scenario_id": sc,
        "customer_ids": chosen,
        "withdrawn": withdrawn,
        "cancelled_sessions": cancelled,
    }


def bad_batch(
    conn: psycopg.Connection, rows: int, now: int, echo: Callable[[str], None] = print
) -> dict[str, list[int]]:
    """A buggy deploy: `rows` invalid sessions (rating 7, no customer, a tutor that does not
    exist, timestamps a day ahead) and a few invalid calls, mixed with valid rows."""
    w, rng = _world(conn, now, 4)
    if not len(w.ids):
        raise ScenarioError("no active customers to attach rows to")
    n_bad, n_good = rows, max(rows // 2, 1)
    n = n_bad + n_good
    max_tutor = first_row(conn.execute("select coalesce(max(id), 0) from tutors"))[0]
    ids = alloc_ids(conn, "tutoring_sessions", n)
    at = (now - rng.integers(HOUR, 6 * HOUR, n)) // HOUR * HOUR
    cols = {
        "id": ids,
        "customer_id": rng.choice(w.ids, n),
        "tutor_id": rng.choice(w.tutor_ids, n),
        "subject_id": rng.integers(1, m.catalog().n + 1, n),
        "scheduled_at": at,
        "duration_minutes": np.full(n, 60),
        "status": np.full(n, "completed", dtype=object),
        "rating": rng.integers(3, 6, n),
        "is_first_session": np.zeros(n, dtype=bool),
        "created_at": at - DAY,
        "updated_at": np.full(n, now),
    }
    defect = np.full(n, -1)
    defect[:n_bad] = np.arange(n_bad) % len(DEFECTS)
    rng.shuffle(defect)
    cols["rating"] = np.where(defect == 0, 7, cols["rating"])
    cols["customer_id"] = np.where(defect == 1, UNSET, cols["customer_id"])
    cols["tutor_id"] = np.where(defect == 2, max_tutor + 1000 + np.arange(n), cols["tutor_id"])
    ahead = now + DAY + rng.integers(0, HOUR, n)
    cols["created_at"] = np.where(defect == 3, ahead, cols["created_at"])
    cols["updated_at"] = np.where(defect == 3, ahead, cols["updated_at"])
    insert_rows(conn, "tutoring_sessions", cols)

    k = max(2, rows // 10)
    calls = call_rows(rng, conn, rng.choice(w.ids, 2 * k), rng.choice(6, 2 * k), now - HOUR, now)
    calls["customer_id"][: k // 2] = UNSET
    calls["reason_code"][k // 2 : k] = "refund_please"
    calls["updated_at"] = np.full(2 * k, now)
    insert_rows(conn, "support.inbound_calls", calls)

    out = {name: ids[defect == i].tolist() for i, name in enumerate(DEFECTS)}
    out["valid_session_ids"] = ids[defect < 0].tolist()
    out["invalid_call_ids"] = calls["id"][:k].tolist()
    out["valid_call_ids"] = calls["id"][k:].tolist()
    sc = record(conn, "bad-batch", {"rows": rows, **out}, now)
    echo(
        f"bad-batch #{sc}: tutoring_sessions: {n_bad} invalid + {n_good} valid rows; "
        f"inbound_calls: {k} invalid + {k} valid rows"
    )
    for name in (*DEFECTS, "valid_session_ids", "invalid_call_ids", "valid_call_ids"):
        echo(
            f"  {name:<22} {len(out[name]):>4}  ids {out[name][:8]}{' ...' if len(out[name]) > 8 else ''}"
        )
    return out

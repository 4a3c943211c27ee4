"""Point-in-time churn features and labels, computed in the warehouse over `raw.*`.

Everything is "as of" a timestamp: only sessions scheduled and calls made strictly before
`as_of` count, and only customers who had signed up and were still customers then are in
the population. Training at a past `as_of` therefore sees what scoring at "now" would have
seen, so the model does not learn from the future.

One SQL statement per call, built from aggregates with `filter` clauses (one pass over
`raw.sessions`), streamed out with COPY: about 1M customers over 5M sessions in seconds.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg

CHANNEL_PREFIX = "channel_"
# Customer statuses that mean the customer has left. A status is only known to have held
# at `as_of` if the row was last changed before then (see the population filter).
CLOSED_STATUSES = ("cancelled", "churned", "deleted", "inactive")

NUMERIC_FEATURES = (
    "sessions_per_week",
    "days_since_last_session",
    "avg_rating_30d",
    "inbound_calls_30d",
    "goal_progress_pct",
    "distinct_tutors_90d",
    "tutor_switches_90d",
    "tenure_days",
    "tutor_cancellations_90d",
    "tutor_no_shows_90d",
)

# The customers who were customers at %(as_of)s: signed up before, not deleted by then, and
# not known to have closed by then. `status` is current state; a closed status whose row was
# updated after as_of may have been set after as_of, so it does not exclude the customer.
_POPULATION = """
population as (
    select
        c.id as customer_id,
        c.goal_progress_pct,
        c.acquisition_channel,
        c.signed_up_at
    from raw.customers as c
    where
        c.signed_up_at < %(as_of)s
        and (c.deleted_at is null or c.deleted_at >= %(as_of)s)
        and not (c.status = any(%(closed_statuses)s) and c.updated_at <= %(as_of)s)
)"""

# One row per customer in the population. Windows end just before as_of; days are fractional.
FEATURES_SQL = (
    "with"
    + _POPULATION
    + """,
session_stats as (
    select
        s.customer_id,
        count(*) filter (
            where s.status = 'completed' and s.scheduled_at >= %(as_of)s - interval '28 days'
        ) as completed_28d,
        max(s.scheduled_at) filter (where s.status = 'completed') as last_completed_at,
        avg(s.rating) filter (
            where s.status = 'completed' and s.scheduled_at >= %(as_of)s - interval '30 days'
        ) as avg_rating_30d,
        count(*) filter (
            where s.status = 'cancelled' and s.cancelled_by = 'tutor'
            and s.scheduled_at >= %(as_of)s - interval '90 days'
        ) as tutor_cancellations_90d,
        count(*) filter (
            where s.status = 'no_show' and s.no_show_by = 'tutor'
            and s.scheduled_at >= %(as_of)s - interval '90 days'
        ) as tutor_no_shows_90d
    from raw.sessions as s
    where s.scheduled_at < %(as_of)s
    group by s.customer_id
),
recent_completed as (
    select
        s.customer_id,
        s.tutor_id,
        lag(s.tutor_id) over (
            partition by s.customer_id order by s.scheduled_at, s.id
        ) as previous_tutor_id
    from raw.sessions as s
    where
        s.status = 'completed'
        and s.scheduled_at >= %(as_of)s - interval '90 days'
        and s.scheduled_at < %(as_of)s
),
tutor_stats as (
    select
        customer_id,
        count(distinct tutor_id) as distinct_tutors_90d,
        count(*) filter (where previous_tutor_id <> tutor_id) as tutor_switches_90d
    from recent_completed
    group by customer_id
),
call_stats as (
    select
        ic.customer_id,
        count(*) as inbound_calls_30d
    from raw.inbound_calls as ic
    where
        ic.called_at >= %(as_of)s - interval '30 days'
        and ic.called_at < %(as_of)s
    group by ic.customer_id
)
select
    p.customer_id,
    coalesce(ss.completed_28d, 0) / 4.0 as sessions_per_week,
    -- never had a completed session: as long without one as they have been a customer
    extract(epoch from %(as_of)s - coalesce(ss.last_completed_at, p.signed_up_at))
        / 86400.0 as days_since_last_session,
    ss.avg_rating_30d::double precision as avg_rating_30d,
    coalesce(cs.inbound_calls_30d, 0) as inbound_calls_30d,
    p.goal_progress_pct::double precision as goal_progress_pct,
    coalesce(ts.distinct_tutors_90d, 0) as distinct_tutors_90d,
    coalesce(ts.tutor_switches_90d, 0) as tutor_switches_90d,
    extract(epoch from %(as_of)s - p.signed_up_at) / 86400.0 as tenure_days,
    coalesce(ss.tutor_cancellations_90d, 0) as tutor_cancellations_90d,
    coalesce(ss.tutor_no_shows_90d, 0) as tutor_no_shows_90d,
    coalesce(p.acquisition_channel, 'unknown') as acquisition_channel
from population as p
left join session_stats as ss on p.customer_id = ss.customer_id
left join tutor_stats as ts on p.customer_id = ts.customer_id
left join call_stats as cs on p.customer_id = cs.customer_id
order by p.customer_id"""
)

# One row per customer in the population at as_of: churned = no completed or booked session
# in (as_of, as_of + horizon].
LABELS_SQL = (
    "with"
    + _POPULATION
    + """,
retained as (
    select distinct s.customer_id
    from raw.sessions as s
    where
        s.status in ('completed', 'scheduled')
        and s.scheduled_at > %(as_of)s
        and s.scheduled_at <= %(horizon_end)s
)
select
    p.customer_id,
    r.customer_id is null as churned
from population as p
left join retained as r on p.customer_id = r.customer_id
order by p.customer_id"""
)

# The newest moment the data vouches for: sessions that have taken place (completed or
# no-show). Booked future sessions and early cancellations say nothing about "now".
DATA_RANGE_SQL = """
select
    min(s.scheduled_at) as oldest_at,
    max(s.scheduled_at) as newest_at
from raw.sessions as s
where s.status in ('completed', 'no_show')
"""


@dataclass(frozen=True)
class TrainingWindow:
    """Where to cut history for training: features before `as_of`, labels after it."""

    as_of: datetime
    horizon_days: int


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _params(as_of: datetime) -> dict[str, object]:
    return {"as_of": _utc(as_of), "closed_statuses": list(CLOSED_STATUSES)}


def _copy_frame(conn: psycopg.Connection, sql: str, params: dict[str, object]) -> pd.DataFrame:
    """Run `sql` through COPY ... TO STDOUT (CSV) and parse it with pandas: for a million rows
    this is several times faster than fetching tuples through the cursor."""
    buffer = io.BytesIO()
    with (
        conn.cursor() as cur,
        cur.copy("copy (" + sql + ") to stdout with (format csv, header true)", params) as copy,
    ):
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    return pd.read_csv(buffer)


def load_features(conn: psycopg.Connection, as_of: datetime) -> pd.DataFrame:
    """Churn features for every customer at `as_of`, one row per customer (index customer_id).

    Columns: NUMERIC_FEATURES, then one 0/1 column per acquisition channel seen
    (`channel_<name>`). `avg_rating_30d` and `goal_progress_pct` may be missing; the model
    imputes them. `goal_progress_pct` is the current value, not the value at `as_of` (the
    source keeps no history of it).
    """
    frame = _copy_frame(conn, FEATURES_SQL, _params(as_of))
    frame = frame.set_index("customer_id")
    channels = frame.pop("acquisition_channel").astype(str)
    dummies = pd.get_dummies(channels, prefix=CHANNEL_PREFIX.rstrip("_"), dtype="float64")
    features = pd.concat([frame.astype("float64"), dummies.sort_index(axis=1)], axis=1)
    features.index = features.index.astype("int64")
    return features


def label_churn(conn: psycopg.Connection, as_of: datetime, horizon_days: int = 60) -> pd.Series:
    """Whether each customer of the `as_of` population churned: no completed or booked
    session in the `horizon_days` after `as_of`. Only meaningful when the data reaches
    `as_of + horizon_days`; raises ValueError otherwise (everyone would look churned)."""
    as_of = _utc(as_of)
    horizon_end = as_of + timedelta(days=horizon_days)
    _, newest = data_range(conn)
    if newest is None or newest < horizon_end:
        raise ValueError(
            f"labels need data up to {horizon_end.isoformat()}, newest session is {newest}"
        )
    frame = _copy_frame(conn, LABELS_SQL, {**_params(as_of), "horizon_end": horizon_end})
    labels = frame.set_index("customer_id")["churned"].map({"t": 1, "f": 0, True: 1, False: 0})
    labels.index = labels.index.astype("int64")
    return labels.astype("int64").rename("churned")


def data_range(conn: psycopg.Connection) -> tuple[datetime | None, datetime | None]:
    """Oldest and newest time of sessions that took place (None, None on an empty warehouse)."""
    with conn.cursor() as cur:
        cur.execute(DATA_RANGE_SQL)
        row = cur.fetchone()
    return (row[0], row[1]) if row else (None, None)


def choose_training_window(
    oldest: datetime,
    newest: datetime,
    horizon_days: int = 60,
    min_history_days: int = 28,
) -> TrainingWindow:
    """Cut so that labels cover a full horizon: as_of = newest - horizon_days.

    With a short history (less than horizon_days + min_history_days in all) the horizon
    shrinks: it keeps min_history_days of features where it can, but never more than half of
    the span goes to features, and it is at least one day.
    """
    span_days = (newest - oldest).total_seconds() / 86400.0
    shorter = max(span_days - min_history_days, span_days / 2.0)
    horizon = max(1, min(horizon_days, int(shorter)))
    return TrainingWindow(as_of=newest - timedelta(days=horizon), horizon_days=horizon)

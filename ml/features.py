"""Point-in-time churn features and labels, computed in the warehouse from the deduplicated
relations dbt builds (`intermediate.int_sessions_deduplicated`, `staging.*`) and the customer
history the warehouse keeps (`raw.customers_history`, migration 0014).

Everything is "as of" a cut-off: only sessions scheduled (and bookings made) and calls placed
strictly before `as_of` count, and only customers who had signed up and were still customers
then are in the population. Attributes the source overwrites in place (status, goal progress)
are read as they were at `as_of`, from the history; where the history does not reach back to
`as_of`, goal progress is left out for every customer (never per customer: whether a value
is known would itself depend on later changes). Training at a past cut-off therefore sees
exactly what scoring at that moment would have seen.

Names differ from the marts' columns wherever the meaning differs (fractional days, windows
that end at a timestamp rather than at the end of a UTC day, tutor changes across subjects), so
one name never means two things; `goal_progress_pct` means what the marts' column means and
keeps its name. One SQL statement per call, streamed out with COPY.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pandas as pd
import psycopg

CHANNEL_PREFIX = "channel_"
# The dbt models whose relations the SQL below reads (directly or through them): build these
# before computing features on a fresh warehouse.
DBT_MODELS = (
    "stg_marketplace__customers",
    "stg_marketplace__sessions",
    "stg_support__inbound_calls",
    "int_sessions_deduplicated",
)
# Customer statuses that mean the customer has left. A status is only known to have held
# at `as_of` if the row was last changed before then (see the population filter).
CLOSED_STATUSES = ("cancelled", "churned", "deleted", "inactive")

NUMERIC_FEATURES = (
    "recency_days",  # days since the last completed session (since signup when none)
    "customer_age_days",  # days since signup
    "lifetime_sessions",  # completed sessions before the cut-off
    "sessions_per_active_week",  # lifetime sessions / weeks with at least one
    "sessions_per_tenure_week",  # lifetime sessions / weeks as a customer (at least one)
    "lifetime_minutes",  # minutes of completed sessions (the source's spend proxy)
    "mean_gap_days",  # mean time between completed sessions (two or more sessions)
    "gap_ratio",  # recency_days / mean_gap_days: how overdue the next session is
    "recent_sessions_30d",  # completed in the 30 days before the cut-off
    "prior_sessions_90d",  # completed in the 90 days before those 30
    "session_trend",  # (recent_30d + 1) / (prior_90d / 3 + 1): above 1 = speeding up
    "rating_avg_90d",  # mean rating of rated sessions in the last 90 days
    "rating_last",  # rating of the newest rated session
    "support_calls_30d",  # inbound support calls in the last 30 days
    "tutor_changes_90d",  # consecutive completed sessions with a different tutor, any subject
    "tutor_failures_90d",  # tutor cancellations and tutor no-shows in the last 90 days
    "customer_cancellations_90d",  # the customer's own cancellations and no-shows, 90 days
    "bookings_ahead",  # sessions booked before the cut-off for the cut-off or later
)
# Attributes read from the customer history: a column of `load_features` only at cut-offs the
# history covers (`history_covers`), so a model trained on them was trained where they held.
HISTORY_FEATURES = ("goal_progress_pct",)  # 0-100, the version valid at the cut-off

# Whether the warehouse's customer history holds every customer's attributes as they were at
# %(as_of)s: the cut-off is at or after the moment history began (migration 0014), or no
# customer has changed since (then every current row is the version valid at as_of). A single
# answer for everyone: see `history_covers`.
_COVERAGE = """
coverage as (
    select
        coalesce(
            %(as_of)s >= (select hc.began_at from raw.customers_history_coverage as hc), false
        )
        or not exists (
            select 1 from raw.customers as rc where rc.updated_at > %(as_of)s
        ) as is_covered
)"""

# The customers who were customers at %(as_of)s: signed up before, not deleted by then, and
# not closed then. Status and goal progress are the version valid at as_of: the current row
# when it was last changed by then, else the history row valid then. When the history does
# not cover as_of, goal progress is unknown (null) for everyone and a status is only known
# to have held at as_of when its row was last changed by then (a closed status set later does
# not exclude the customer). A customer changed after as_of with no version valid then (first
# ingested after that change) has unknown goal progress and counts as open.
_POPULATION = (
    _COVERAGE
    + """,
version_at as (
    select distinct on (h.customer_id)
        h.customer_id,
        h.status,
        h.goal_progress_pct
    from raw.customers_history as h
    where h.valid_to > %(as_of)s and h.valid_from <= %(as_of)s /*sample h*/
    order by h.customer_id, h.valid_to
),
population as (
    select
        c.customer_id,
        c.acquisition_channel,
        c.signed_up_at,
        case
            when not cov.is_covered then null
            when c.updated_at <= %(as_of)s then c.goal_progress_pct
            else v.goal_progress_pct
        end as goal_progress_pct
    from staging.stg_marketplace__customers as c
    cross join coverage as cov
    left join version_at as v
        on c.customer_id = v.customer_id and c.updated_at > %(as_of)s and cov.is_covered
    where
        c.signed_up_at < %(as_of)s
        and (c.deleted_at is null or c.deleted_at >= %(as_of)s)
        and coalesce(
            case
                when c.updated_at <= %(as_of)s then c.customer_status = any(%(closed_statuses)s)
                else v.status = any(%(closed_statuses)s)
            end,
            false
        ) is false
        /*sample c*/
)"""
)

# One row per customer in the population. Windows end just before as_of; days are fractional.
FEATURES_SQL = (
    "with"
    + _POPULATION
    + """,
windows as (
    -- The windows' starts, computed once: written into the aggregates' filters, each was
    -- computed again for every session row (a seventh of the query at a million customers).
    select
        %(as_of)s - interval '30 days' as since_30d,
        %(as_of)s - interval '90 days' as since_90d,
        %(as_of)s - interval '120 days' as since_120d
),
past as (
    select
        s.customer_id,
        s.tutor_id,
        s.scheduled_at,
        s.session_id,
        s.duration_minutes,
        s.rating,
        s.is_completed,
        s.is_tutor_cancellation or s.is_tutor_no_show as is_tutor_failure,
        s.is_customer_cancellation or s.is_customer_no_show as is_customer_failure
    from intermediate.int_sessions_deduplicated as s
    where s.scheduled_at < %(as_of)s /*sample s*/
),
session_stats as (
    select
        customer_id,
        count(*) filter (where is_completed) as lifetime_sessions,
        count(distinct date_trunc('week', scheduled_at)) filter (
            where is_completed
        ) as active_weeks,
        coalesce(sum(duration_minutes) filter (where is_completed), 0) as lifetime_minutes,
        min(scheduled_at) filter (where is_completed) as first_completed_at,
        max(scheduled_at) filter (where is_completed) as last_completed_at,
        count(*) filter (
            where is_completed and scheduled_at >= w.since_30d
        ) as recent_sessions_30d,
        count(*) filter (
            where is_completed
            and scheduled_at >= w.since_120d
            and scheduled_at < w.since_30d
        ) as prior_sessions_90d,
        avg(rating) filter (
            where is_completed and scheduled_at >= w.since_90d
        ) as rating_avg_90d,
        (array_agg(rating order by scheduled_at desc, session_id desc) filter (
            where is_completed and rating is not null
        ))[1] as rating_last,
        count(*) filter (
            where is_tutor_failure and scheduled_at >= w.since_90d
        ) as tutor_failures_90d,
        count(*) filter (
            where is_customer_failure and scheduled_at >= w.since_90d
        ) as customer_cancellations_90d
    from past
    cross join windows as w
    group by customer_id
),
recent_completed as (
    select
        customer_id,
        tutor_id,
        lag(tutor_id) over (
            partition by customer_id order by scheduled_at, session_id
        ) as previous_tutor_id
    from past
    cross join windows as w
    where is_completed and scheduled_at >= w.since_90d
),
tutor_stats as (
    select
        customer_id,
        count(*) filter (where previous_tutor_id <> tutor_id) as tutor_changes_90d
    from recent_completed
    group by customer_id
),
booked as (
    -- booked before as_of for as_of or later, and not cancelled before as_of
    select
        s.customer_id,
        count(*) as bookings_ahead
    from intermediate.int_sessions_deduplicated as s
    where
        s.scheduled_at >= %(as_of)s
        and s.created_at < %(as_of)s
        and not (s.session_status = 'cancelled' and s.updated_at < %(as_of)s)
        /*sample s*/
    group by s.customer_id
),
call_stats as (
    select
        ic.customer_id,
        count(*) as support_calls_30d
    from staging.stg_support__inbound_calls as ic
    cross join windows as w
    where
        ic.called_at >= w.since_30d
        and ic.called_at < %(as_of)s
        /*sample ic*/
    group by ic.customer_id
),
joined as (
    select
        p.customer_id,
        extract(epoch from %(as_of)s - coalesce(ss.last_completed_at, p.signed_up_at))
            / 86400.0 as recency_days,
        extract(epoch from %(as_of)s - p.signed_up_at) / 86400.0 as customer_age_days,
        coalesce(ss.lifetime_sessions, 0) as lifetime_sessions,
        coalesce(ss.active_weeks, 0) as active_weeks,
        coalesce(ss.lifetime_minutes, 0) as lifetime_minutes,
        case
            when ss.lifetime_sessions > 1
                then extract(epoch from ss.last_completed_at - ss.first_completed_at)
                / 86400.0 / (ss.lifetime_sessions - 1)
        end as mean_gap_days,
        coalesce(ss.recent_sessions_30d, 0) as recent_sessions_30d,
        coalesce(ss.prior_sessions_90d, 0) as prior_sessions_90d,
        ss.rating_avg_90d::double precision as rating_avg_90d,
        ss.rating_last::double precision as rating_last,
        coalesce(cs.support_calls_30d, 0) as support_calls_30d,
        coalesce(ts.tutor_changes_90d, 0) as tutor_changes_90d,
        coalesce(ss.tutor_failures_90d, 0) as tutor_failures_90d,
        coalesce(ss.customer_cancellations_90d, 0) as customer_cancellations_90d,
        coalesce(b.bookings_ahead, 0) as bookings_ahead,
        p.goal_progress_pct::double precision as goal_progress_pct,
        coalesce(p.acquisition_channel, 'unknown') as acquisition_channel
    from population as p
    left join session_stats as ss on p.customer_id = ss.customer_id
    left join tutor_stats as ts on p.customer_id = ts.customer_id
    left join call_stats as cs on p.customer_id = cs.customer_id
    left join booked as b on p.customer_id = b.customer_id
)
select
    customer_id,
    recency_days,
    customer_age_days,
    lifetime_sessions,
    lifetime_sessions::double precision / greatest(active_weeks, 1) as sessions_per_active_week,
    lifetime_sessions / greatest(customer_age_days / 7.0, 1) as sessions_per_tenure_week,
    lifetime_minutes,
    mean_gap_days,
    case
        when mean_gap_days is not null then recency_days / greatest(mean_gap_days, 1)
    end as gap_ratio,
    recent_sessions_30d,
    prior_sessions_90d,
    (recent_sessions_30d + 1) / (prior_sessions_90d / 3.0 + 1) as session_trend,
    rating_avg_90d,
    rating_last,
    support_calls_30d,
    tutor_changes_90d,
    tutor_failures_90d,
    customer_cancellations_90d,
    bookings_ahead,
    goal_progress_pct,
    acquisition_channel
from joined
order by customer_id"""
)

# One row per customer in the population at as_of: churned = no completed or booked session
# in (as_of, as_of + horizon].
LABELS_SQL = (
    "with"
    + _POPULATION
    + """,
retained as (
    select distinct s.customer_id
    from intermediate.int_sessions_deduplicated as s
    where
        s.session_status in ('completed', 'scheduled')
        and s.scheduled_at > %(as_of)s
        and s.scheduled_at <= %(horizon_end)s
        /*sample s*/
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
from intermediate.int_sessions_deduplicated as s
where s.session_status in ('completed', 'no_show')
"""


@dataclass(frozen=True)
class TrainingWindow:
    """Where to cut history for training: features before `as_of`, labels after it."""

    as_of: datetime
    horizon_days: int


# A training sample is a fixed share of customers, the same at every cut-off: those whose
# hashed id falls in the first `buckets` of SAMPLE_BUCKETS. Filtering the sessions and calls by
# the same hash (not by a join to the population) lets every aggregate read only their rows.
SAMPLE_BUCKETS = 1024

POPULATION_SIZE_SQL = "with" + _POPULATION + "\nselect count(*) from population"


def _sampled(sql: str, buckets: int | tuple[int, int] | None) -> str:
    """`sql` with its `/*sample <alias>*/` markers removed (every customer) or turned into a
    filter on that alias's customer_id: the first `buckets` of SAMPLE_BUCKETS, or the buckets
    in [low, high) of a shard."""
    low, high = (0, buckets) if isinstance(buckets, int) else buckets or (0, SAMPLE_BUCKETS)
    bucket = "(hashint8({alias}.customer_id::bigint) & " + str(SAMPLE_BUCKETS - 1) + ")"
    conditions = ([f"{bucket} >= {int(low)}"] if low > 0 else []) + (
        [f"{bucket} < {int(high)}"] if high < SAMPLE_BUCKETS else []
    )
    for alias in ("c", "s", "ic", "h"):
        filter_sql = "".join(f" and {c.format(alias=alias)}" for c in conditions)
        sql = sql.replace(f"/*sample {alias}*/", filter_sql.strip())
    return sql


def shards(n: int) -> list[tuple[int, int]]:
    """`n` bucket ranges that together hold every customer once."""
    edges = [SAMPLE_BUCKETS * i // n for i in range(n + 1)]
    return list(pairwise(edges))


def sample_buckets(population: int, max_rows: int) -> int | None:
    """How many of SAMPLE_BUCKETS to keep so that about `max_rows` of `population` customers
    remain; None (everyone) when the population is that small already."""
    if population <= max_rows:
        return None
    return max(1, -(-SAMPLE_BUCKETS * max_rows // population))


def population_size(conn: psycopg.Connection, as_of: datetime) -> int:
    """How many customers were customers at `as_of` (the population a cut-off scores)."""
    row = conn.execute(_sampled(POPULATION_SIZE_SQL, None), _params(as_of)).fetchone()
    return int(row[0]) if row else 0


HISTORY_COVERS_SQL = "with" + _COVERAGE + "\nselect is_covered from coverage"


def history_covers(conn: psycopg.Connection, as_of: datetime) -> bool:
    """Whether the customer history holds every customer's attributes as they were at
    `as_of` (migration 0014 records when it began). When it does not, HISTORY_FEATURES are
    unknown at `as_of` for every customer."""
    row = conn.execute(HISTORY_COVERS_SQL, _params(as_of)).fetchone()
    return bool(row and row[0])


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _params(as_of: datetime) -> dict[str, object]:
    return {"as_of": _utc(as_of), "closed_statuses": list(CLOSED_STATUSES)}


def _copy_frame(
    conn: psycopg.Connection,
    sql: str,
    params: dict[str, object],
    text_columns: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Run `sql` through COPY ... TO STDOUT (CSV) and parse it: for a million rows this is
    several times faster than fetching tuples through the cursor."""
    buffer = io.BytesIO()
    with (
        conn.cursor() as cur,
        cur.copy("copy (" + sql + ") to stdout with (format csv, header true)", params) as copy,
    ):
        for block in copy:
            buffer.write(block)
    return parse_csv(buffer.getvalue(), text_columns)


def parse_csv(raw: bytes, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """A COPY CSV (with header) as a pandas frame: `customer_id` int64, `text_columns` as
    strings, every other column float64 (missing = NaN). Parsed by polars (multi-threaded;
    `bench_churn` measures it against pandas' C reader on the same bytes: 0.36 s against 0.63 s
    at S1, 41k customers, README "Benchmarks") and handed to pandas, which sklearn and shap take. The types are given,
    not inferred: inference looks at the first rows only, and a column that is empty there
    would be read as text."""
    import polars as pl

    header = raw.split(b"\n", 1)[0].decode().strip().split(",")
    schema = {
        name: pl.Int64
        if name == "customer_id"
        else pl.String
        if name in text_columns
        else pl.Float64
        for name in header
    }
    return pl.read_csv(io.BytesIO(raw), schema=schema).to_pandas()


def load_features(
    conn: psycopg.Connection, as_of: datetime, sample: int | tuple[int, int] | None = None
) -> pd.DataFrame:
    """Churn features for every customer at `as_of`, one row per customer (index customer_id),
    or for the customers of the first `sample` buckets of SAMPLE_BUCKETS (a training sample) or
    of a (low, high) bucket range (a shard, see `combine_shards`).

    Columns: NUMERIC_FEATURES, then HISTORY_FEATURES when the customer history covers `as_of`
    (`history_covers`; left out otherwise), then one 0/1 column per acquisition channel seen
    (`channel_<name>`; the model keeps its top channels and folds the rest into
    `channel_other`). `mean_gap_days`, `gap_ratio`, the rating columns and goal progress are
    missing when there is nothing to compute them from; the model imputes them.
    """
    frame = _copy_frame(
        conn, _sampled(FEATURES_SQL, sample), _params(as_of), ("acquisition_channel",)
    )
    frame = frame.set_index("customer_id")
    numeric = [*NUMERIC_FEATURES, *(HISTORY_FEATURES if history_covers(conn, as_of) else ())]
    channels = frame.pop("acquisition_channel").astype(str)
    dummies = pd.get_dummies(channels, prefix=CHANNEL_PREFIX.rstrip("_"), dtype="float64")
    features = pd.concat([frame.reindex(columns=numeric).astype("float64"), dummies], axis=1)
    features = features[[*numeric, *sorted(dummies.columns)]]
    features.index = features.index.astype("int64")
    return features


def combine_shards(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The feature frames of disjoint shards as one frame, as `load_features` of everyone
    returns it: a channel seen in one shard only is 0 for the others' customers."""
    features = pd.concat(parts)
    channels = sorted(c for c in features.columns if c.startswith(CHANNEL_PREFIX))
    features[channels] = features[channels].fillna(0.0)
    history = [c for c in HISTORY_FEATURES if c in features.columns]
    return features[[*NUMERIC_FEATURES, *history, *channels]].sort_index()


def label_churn(
    conn: psycopg.Connection,
    as_of: datetime,
    horizon_days: int = 60,
    newest: datetime | None = None,
    sample: int | None = None,
) -> pd.Series:
    """Whether each customer of the `as_of` population churned: no completed or booked
    session in the `horizon_days` after `as_of` (`sample`: as `load_features`). Only meaningful when the data reaches
    `as_of + horizon_days`; raises ValueError otherwise (everyone would look churned).
    `newest` is `data_range(conn)[1]` when the caller has it already (the query scans every
    session: 1-2 minutes at a million customers on a busy machine)."""
    as_of = _utc(as_of)
    horizon_end = as_of + timedelta(days=horizon_days)
    if newest is None:
        _, newest = data_range(conn)
    if newest is None or newest < horizon_end:
        raise ValueError(
            f"labels need data up to {horizon_end.isoformat()}, newest session is {newest}"
        )
    frame = _copy_frame(
        conn,
        _sampled(LABELS_SQL, sample),
        {**_params(as_of), "horizon_end": horizon_end},
        ("churned",),
    )
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

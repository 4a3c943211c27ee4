"""The kinds of alert rule: each a parameterized query returning what fires right now.

A rule in `rules.yaml` picks a kind and gives its thresholds; the thresholds reach PostgreSQL
only as bound parameters. Every query returns one row per firing entity with the columns
`entity_key` (text, unique per rule: the dedup key's second half), `entity_id` (bigint or
null), `title` and `details` (jsonb), and receives `%(now)s` so tests can run on a simulated
clock. A kind whose tables do not exist yet (fresh warehouse, model not trained) is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerRiskParams(Params):
    tiers: list[str] = Field(default_factory=lambda: ["critical"], min_length=1)
    # Also fire when the risk score rose by at least this many points in 7 days.
    score_rise_points: float | None = Field(default=None, gt=0)
    # Customers in these tiers are left to another rule (critical ones to customer_critical).
    exclude_tiers: list[str] = Field(default_factory=list)


class AtRiskSpikeParams(Params):
    tiers: list[str] = Field(default_factory=lambda: ["high", "critical"], min_length=1)
    baseline_days: int = Field(default=14, ge=1, le=90)
    min_baseline_days: int = Field(default=3, ge=1)
    ratio: float = Field(default=1.3, gt=1)
    min_increase: int = Field(default=10, ge=1)


class TutorParams(Params):
    min_sessions: int = Field(default=8, ge=1)
    max_no_show_rate: float = Field(default=0.10, ge=0, le=1)
    min_avg_rating: float = Field(default=3.5, ge=1, le=5)
    min_first_session_success: float = Field(default=0.5, ge=0, le=1)
    min_first_sessions: int = Field(default=3, ge=1)


class SupplyGapParams(Params):
    horizon_hours: int = Field(default=24, ge=1, le=168)
    ratio: float = Field(default=1.2, gt=0)
    min_demand: float = Field(default=1.0, ge=0)


class SupportSurgeParams(Params):
    window_minutes: int = Field(default=60, ge=5, le=24 * 60)
    baseline_days: int = Field(default=14, ge=1, le=60)
    ratio: float = Field(default=2.0, gt=1)
    min_calls: int = Field(default=10, ge=1)


class DemandSurgeParams(Params):
    window_minutes: int = Field(default=60, ge=5, le=24 * 60)
    baseline_days: int = Field(default=14, ge=1, le=60)
    ratio: float = Field(default=3.0, gt=1)
    min_requests: int = Field(default=8, ge=1)


class NoShowStreakParams(Params):
    hours: int = Field(default=72, ge=1, le=24 * 14)
    min_no_shows: int = Field(default=3, ge=1)
    min_rate: float = Field(default=0.4, gt=0, le=1)


class ForecastAccuracyParams(Params):
    max_mase: float = Field(default=1.5, gt=0)
    min_hours: int = Field(default=12, ge=1)
    days: int = Field(default=2, ge=1, le=30)


class ChurnDriftParams(Params):
    """A feature alerts when the monitoring asset marked it drifted (`is_drifted`, at the
    asset's `psi_threshold`): one threshold for the alert and the retraining it triggers."""

    days: int = Field(default=2, ge=1, le=30)
    # Only to name the right place in the error when an older rules file still sets it.
    max_psi: None = None

    @field_validator("max_psi", mode="before")
    @classmethod
    def _threshold_lives_in_the_asset(cls, value: object) -> None:
        if value is not None:
            raise ValueError(
                "churn_drift fires on ml.churn_drift.is_drifted; set the PSI threshold in the "
                "churn_monitoring asset's config (psi_threshold), not in the rule"
            )


class ChurnAccuracyParams(Params):
    min_roc_auc: float = Field(default=0.65, gt=0, le=1)
    min_customers: int = Field(default=50, ge=1)


class StaleParams(Params):
    max_age_minutes: int = Field(default=30, ge=1)


class CheckFailedParams(Params):
    lookback_hours: int = Field(default=24, ge=1)
    # Which checks' failures the rule watches: blocking ('error') or warning-only ('warn') ones.
    severities: list[Literal["error", "warn"]] = Field(default=["error"], min_length=1)


class WatermarkParams(Params):
    stuck_minutes: int = Field(default=30, ge=1)
    min_quarantined: int = Field(default=1, ge=1)


class OutboxParams(Params):
    min_given_up: int = Field(default=1, ge=1)


class NoParams(Params):
    pass


@dataclass(frozen=True)
class RuleKind:
    """A kind of rule: its parameters, the relations it reads and its query."""

    name: str
    params: type[Params]
    relations: tuple[str, ...]
    sql: str = ""
    # Raised from outside (a Dagster run-failure sensor), never evaluated on a schedule.
    event_only: bool = False


CUSTOMER_RISK_SQL = """
select
    h.customer_id::text as entity_key,
    h.customer_id as entity_id,
    case
        when h.risk_tier = any(%(tiers)s::text[])
            then 'Customer ' || h.customer_id || ' is at ' || h.risk_tier || ' churn risk'
        else 'Customer ' || h.customer_id || ' risk rose '
            || round(h.risk_score_change_7d::numeric) || ' points in 7 days'
    end as title,
    jsonb_build_object(
        'risk_score', h.risk_score,
        'risk_tier', h.risk_tier,
        'risk_score_change_7d', h.risk_score_change_7d,
        'top_risk_component', h.top_risk_component,
        'days_since_last_session', h.days_since_last_session,
        'sessions_30d', h.sessions_30d,
        'avg_rating_30d', h.avg_rating_30d,
        'inbound_calls_30d', h.inbound_calls_30d,
        'computed_at', h.computed_at
    ) as details
from marts.customer_health as h
where
    not (h.risk_tier = any(%(exclude_tiers)s::text[]))
    and (
        h.risk_tier = any(%(tiers)s::text[])
        or h.risk_score_change_7d >= %(score_rise_points)s::float8
    )
"""

# Today's count against the count on each of the trailing days, from the pipeline's daily tier
# counts (marts.risk_tiers_daily: a handful of rows), the newest counted day on or before each
# day standing for a day the pipeline did not run. Rebuilding each day's count from the daily
# snapshots instead would read every customer's history for every trailing day: at a million
# customers and 90 days of snapshots, hundreds of millions of rows per evaluation.
AT_RISK_SPIKE_SQL = """
with today as (
    select count(*) as customers
    from marts.customer_health
    where risk_tier = any(%(tiers)s::text[])
),

days as (
    select day::date as day
    from generate_series(
        (%(now)s::timestamptz at time zone 'UTC')::date - %(baseline_days)s::int,
        (%(now)s::timestamptz at time zone 'UTC')::date - 1,
        interval '1 day'
    ) as day
),

daily as (
    select days.day, latest.customers
    from days
    cross join lateral (
        select
            case when 'low' = any(%(tiers)s::text[]) then r.low_customers else 0 end
            + case when 'medium' = any(%(tiers)s::text[]) then r.medium_customers else 0 end
            + case when 'high' = any(%(tiers)s::text[]) then r.high_customers else 0 end
            + case when 'critical' = any(%(tiers)s::text[]) then r.critical_customers else 0 end
                as customers
        from marts.risk_tiers_daily as r
        where r.snapshot_date <= days.day
        order by r.snapshot_date desc
        limit 1
    ) as latest
),

baseline as (
    select avg(customers)::float8 as usual, count(*) as days from daily
)

select
    'population' as entity_key,
    null::bigint as entity_id,
    'At-risk customers spiked: ' || today.customers || ' against a usual '
        || round(baseline.usual::numeric) as title,
    jsonb_build_object(
        'customers', today.customers, 'usual', round(baseline.usual::numeric, 1),
        'baseline_days', baseline.days, 'tiers', %(tiers)s::text[]
    ) as details
from today, baseline
where
    baseline.days >= %(min_baseline_days)s
    and today.customers >= baseline.usual * %(ratio)s
    and today.customers - baseline.usual >= %(min_increase)s
"""

TUTOR_SQL = """
select
    t.tutor_id::text as entity_key,
    t.tutor_id as entity_id,
    'Tutor ' || t.tutor_id || ' underperforming: ' || concat_ws(', ',
        case when t.tutor_no_show_rate_30d > %(max_no_show_rate)s
            then 'no-show rate ' || round(100 * t.tutor_no_show_rate_30d) || '%%' end,
        case when t.avg_rating_30d < %(min_avg_rating)s
            then 'rating ' || round(t.avg_rating_30d, 1) end,
        case when t.first_sessions_resolved_30d >= %(min_first_sessions)s
            and t.first_session_success_rate_30d < %(min_first_session_success)s
            then 'first-session success ' || round(100 * t.first_session_success_rate_30d) || '%%'
        end
    ) as title,
    jsonb_build_object(
        'sessions_scheduled_30d', t.sessions_scheduled_30d,
        'tutor_no_show_rate_30d', t.tutor_no_show_rate_30d,
        'avg_rating_30d', t.avg_rating_30d,
        'first_session_success_rate_30d', t.first_session_success_rate_30d,
        'first_sessions_resolved_30d', t.first_sessions_resolved_30d,
        'as_of_date', t.as_of_date
    ) as details
from marts.tutor_performance as t
where
    t.sessions_scheduled_30d >= %(min_sessions)s
    and (
        t.tutor_no_show_rate_30d > %(max_no_show_rate)s
        or t.avg_rating_30d < %(min_avg_rating)s
        or (
            t.first_sessions_resolved_30d >= %(min_first_sessions)s
            and t.first_session_success_rate_30d < %(min_first_session_success)s
        )
    )
"""

SUPPLY_GAP_SQL = """
select
    g.subject_id::text as entity_key,
    g.subject_id as entity_id,
    'Demand above supply for ' || coalesce(max(g.subject_name), 'subject ' || g.subject_id)
        || ' in ' || count(*) || ' of the next ' || %(horizon_hours)s || ' hours' as title,
    jsonb_build_object(
        'hours', count(*),
        'first_hour_at', min(g.hour_at),
        'max_forecast_sessions', round(max(g.forecast_requested_sessions)::numeric, 1),
        'min_available_tutor_hours', min(g.available_tutor_hours),
        'ratio', %(ratio)s::float8
    ) as details
from marts.demand_supply_gaps_hourly as g
where
    g.hour_at >= date_trunc('hour', %(now)s::timestamptz)
    and g.hour_at < date_trunc('hour', %(now)s::timestamptz) + make_interval(hours => %(horizon_hours)s)
    and g.forecast_requested_sessions >= %(min_demand)s
    and g.forecast_requested_sessions > g.available_tutor_hours * %(ratio)s
group by g.subject_id
"""

# One scan: calls in the last window, and calls in the same window of each trailing day.
SUPPORT_SURGE_SQL = """
with calls as (
    select extract(epoch from %(now)s::timestamptz - called_at) as age_s
    from raw.inbound_calls
    where
        called_at > %(now)s::timestamptz
            - make_interval(days => %(baseline_days)s, mins => %(window_minutes)s)
        and called_at <= %(now)s::timestamptz
),

counted as (
    select
        count(*) filter (where age_s < %(window_minutes)s * 60) as recent,
        count(*) filter (
            where age_s >= 86400 and mod(age_s::numeric, 86400) < %(window_minutes)s * 60
        )::float8 / %(baseline_days)s as usual
    from calls
)

select
    'support_calls' as entity_key,
    null::bigint as entity_id,
    'Support calls surging: ' || recent || ' in the last ' || %(window_minutes)s
        || ' min against a usual ' || round(usual::numeric, 1) as title,
    jsonb_build_object('calls', recent, 'usual', round(usual::numeric, 1)) as details
from counted
where recent >= %(min_calls)s and recent >= usual * %(ratio)s
"""

# Requests created per subject in the last window against the same window of each trailing day
# (raw data, so it sees a burst as soon as ingestion loads it, before any mart or forecast).
DEMAND_SURGE_SQL = """
with requests as (
    select subject_id, extract(epoch from %(now)s::timestamptz - created_at) as age_s
    from raw.session_requests
    where
        created_at > %(now)s::timestamptz
            - make_interval(days => %(baseline_days)s, mins => %(window_minutes)s)
        and created_at <= %(now)s::timestamptz
),

counted as (
    select
        subject_id,
        count(*) filter (where age_s < %(window_minutes)s * 60) as recent,
        count(*) filter (
            where age_s >= 86400 and mod(age_s::numeric, 86400) < %(window_minutes)s * 60
        )::float8 / %(baseline_days)s as usual
    from requests
    group by subject_id
)

select
    subject_id::text as entity_key,
    subject_id as entity_id,
    'Demand surge for subject ' || subject_id || ': ' || recent || ' requests in the last '
        || %(window_minutes)s || ' min against a usual ' || round(usual::numeric, 1) as title,
    jsonb_build_object('requests', recent, 'usual', round(usual::numeric, 1)) as details
from counted
where recent >= %(min_requests)s and recent >= usual * %(ratio)s
"""

# Tutor no-shows among the sessions scheduled in the last hours (the 30-day mart rates move
# too slowly to notice a tutor who stopped showing up this week).
NO_SHOW_STREAK_SQL = """
with recent as (
    select
        tutor_id,
        count(*) filter (where no_show_by = 'tutor') as no_shows,
        count(*) filter (where status in ('completed', 'no_show')) as resolved
    from raw.sessions
    where
        scheduled_at > %(now)s::timestamptz - make_interval(hours => %(hours)s)
        and scheduled_at <= %(now)s::timestamptz
    group by tutor_id
)

select
    tutor_id::text as entity_key,
    tutor_id as entity_id,
    'Tutor ' || tutor_id || ' missed ' || no_shows || ' of ' || resolved || ' sessions in '
        || %(hours)s || ' h' as title,
    jsonb_build_object('no_shows', no_shows, 'sessions', resolved, 'hours', %(hours)s) as details
from recent
where no_shows >= %(min_no_shows)s and no_shows >= resolved * %(min_rate)s
"""

FORECAST_ACCURACY_SQL = """
with recent as (
    select m.model_name, m.subject_id, m.monitored_date, m.mase, m.coverage, m.served_model
    from ml.model_monitoring as m
    where
        m.monitored_date > (%(now)s::timestamptz at time zone 'UTC')::date - %(days)s::int - 1
        and m.hours >= %(min_hours)s
)

select
    r.model_name || ':' || r.subject_id as entity_key,
    r.subject_id as entity_id,
    'Demand forecast for subject ' || r.subject_id || ' degraded: MASE '
        || round(max(r.mase)::numeric, 2) as title,
    jsonb_build_object(
        'model_name', r.model_name, 'max_mase', round(max(r.mase)::numeric, 3),
        'threshold', %(max_mase)s::float8, 'days', count(*), 'latest_date', max(r.monitored_date)
    ) as details
from recent as r
group by r.model_name, r.subject_id
having bool_and(r.mase > %(max_mase)s) and count(*) >= 1
"""

CHURN_DRIFT_SQL = """
with latest as (
    select model_name, max(monitored_date) as monitored_date
    from ml.churn_drift
    where monitored_date > (%(now)s::timestamptz at time zone 'UTC')::date - %(days)s::int - 1
    group by model_name
)

select
    d.model_name || ':' || d.feature as entity_key,
    null::bigint as entity_id,
    'Churn feature ' || d.feature || ' drifted (PSI ' || round(d.psi::numeric, 2) || ')' as title,
    jsonb_build_object(
        'model_name', d.model_name, 'model_version', d.model_version, 'feature', d.feature,
        'psi', d.psi, 'threshold', d.threshold, 'monitored_date', d.monitored_date
    ) as details
from ml.churn_drift as d
inner join latest using (model_name, monitored_date)
where d.is_drifted
"""

# The latest scored date whose outcome window has closed decides.
CHURN_ACCURACY_SQL = """
with latest as (
    select distinct on (model_name) *
    from ml.churn_accuracy
    where customers >= %(min_customers)s and roc_auc is not null
    order by model_name, scored_date desc
)

select
    model_name as entity_key,
    null::bigint as entity_id,
    'Churn model ' || model_name || ' v' || model_version || ' accuracy dropped: ROC AUC '
        || round(roc_auc::numeric, 2) as title,
    jsonb_build_object(
        'model_version', model_version, 'roc_auc', roc_auc, 'recall', recall,
        'precision', precision, 'scored_date', scored_date, 'customers', customers,
        'threshold', %(min_roc_auc)s::float8
    ) as details
from latest
where roc_auc < %(min_roc_auc)s
"""

SESSIONS_STALE_SQL = """
with latest as (
    select max(_ingested_at) as last_ingested_at from raw.sessions
)

select
    'raw.sessions' as entity_key,
    null::bigint as entity_id,
    'No new sessions ingested for '
        || floor(extract(epoch from %(now)s::timestamptz - last_ingested_at) / 60) || ' min'
        as title,
    jsonb_build_object('last_ingested_at', last_ingested_at) as details
from latest
where last_ingested_at < %(now)s::timestamptz - make_interval(mins => %(max_age_minutes)s)
"""

# The latest run of each watched check decides; a later pass resolves it. The title names the
# table, the check and why it failed (the first failed expectations with what was observed),
# as the check's own email did before the engine took over its notifications.
CHECK_FAILED_SQL = """
with latest as (
    select distinct on (asset_key, check_name)
        id, asset_key, check_name, suite, severity, success, failed, expectations, run_id,
        data_docs, checked_at
    from quality.check_runs
    where
        severity = any(%(severities)s::text[])
        and checked_at > %(now)s::timestamptz - make_interval(hours => %(lookback_hours)s)
    order by asset_key, check_name, checked_at desc, id desc
)

select
    l.asset_key || '/' || l.check_name as entity_key,
    null::bigint as entity_id,
    case when l.severity = 'error' then 'Blocking check ' else 'Check ' end
        || l.check_name || ' failed on ' || l.asset_key || ' ('
        || l.failed || ' of ' || l.expectations || ' expectations)'
        || coalesce(': ' || why.reason, '') as title,
    jsonb_build_object(
        'asset_key', l.asset_key, 'check_name', l.check_name, 'suite', l.suite,
        'severity', l.severity, 'check_run_id', l.id, 'run_id', l.run_id,
        'checked_at', l.checked_at, 'data_docs', l.data_docs,
        'failures', coalesce(why.failures, '[]'::jsonb)
    ) as details
from latest as l
left join lateral (
    select
        string_agg(
            f.label || coalesce(
                ' (error: ' || left(f.error, 120) || ')',
                ' (observed ' || left(f.observed_value::text, 120) || ')',
                ''
            ),
            '; ' order by f.label, f.id
        ) as reason,
        jsonb_agg(
            jsonb_build_object(
                'label', f.label, 'observed', f.observed_value, 'error', f.error,
                'sample', jsonb_path_query_array(f.sample, '$[0 to 2]')
            )
            order by f.label, f.id
        ) as failures
    from (
        select r.id, r.label, r.error, r.observed_value, r.sample
        from quality.check_results as r
        where r.check_run_id = l.id and not r.success
        order by r.label, r.id
        limit 3
    ) as f
) as why on true
where not l.success
"""

# `raw.watermarks.updated_at` is written by every cycle, moved or not, so it cannot tell a stuck
# table. The watermark itself is the newest source time loaded: rows quarantined more than
# `stuck_minutes` after it, and newer than it by their own `updated_at` where readable, mean
# nothing new was loadable for that long. A bad row among valid ones never counts, nor an old
# bad row that a first load meets after the table's newest valid row
# (tests/integration/test_hardening_stalls.py).
WATERMARK_SQL = """
select
    w.table_name as entity_key,
    null::bigint as entity_id,
    'Ingestion of ' || w.table_name || ' stuck: no row loaded for '
        || floor(extract(epoch from %(now)s::timestamptz - w.watermark) / 60)
        || ' min while ' || q.rows || ' newer rows were quarantined' as title,
    jsonb_build_object(
        'watermark', w.watermark, 'watermark_updated_at', w.updated_at,
        'quarantined_rows', q.rows, 'last_quarantined_at', q.last_at, 'reasons', q.reasons
    ) as details
from raw.watermarks as w
cross join lateral (
    select count(*) as rows, max(quarantined_at) as last_at,
        (array_agg(distinct reason))[1:3] as reasons
    from raw.quarantine as q
    where
        q.table_name = w.table_name
        and q.quarantined_at > w.watermark + make_interval(mins => %(stuck_minutes)s)
        -- newer than the watermark by the row's own time, when it has a readable one: an old
        -- bad row met on the first load of a quiet table is not a stall (migration 0016)
        and coalesce(raw.try_timestamptz(q.payload ->> 'updated_at'), q.quarantined_at)
        > w.watermark + make_interval(mins => %(stuck_minutes)s)
) as q
where
    w.watermark < %(now)s::timestamptz - make_interval(mins => %(stuck_minutes)s)
    and q.rows >= %(min_quarantined)s
"""

OUTBOX_SQL = """
select
    'notification_outbox' as entity_key,
    null::bigint as entity_id,
    count(*) || ' notification(s) given up by the outbox' as title,
    jsonb_build_object(
        'given_up', count(*), 'outbox_ids', (array_agg(id order by id desc))[1:20],
        'first_given_up_at', min(given_up_at)
    ) as details
from app.notification_outbox
where status = 'given_up'
having count(*) >= %(min_given_up)s
"""

KINDS: dict[str, RuleKind] = {
    kind.name: kind
    for kind in (
        RuleKind(
            "customer_risk",
            CustomerRiskParams,
            ("marts.customer_health",),
            CUSTOMER_RISK_SQL,
        ),
        RuleKind(
            "at_risk_spike",
            AtRiskSpikeParams,
            ("marts.customer_health", "marts.risk_tiers_daily"),
            AT_RISK_SPIKE_SQL,
        ),
        RuleKind("tutor_underperforming", TutorParams, ("marts.tutor_performance",), TUTOR_SQL),
        RuleKind(
            "supply_gap", SupplyGapParams, ("marts.demand_supply_gaps_hourly",), SUPPLY_GAP_SQL
        ),
        RuleKind("support_surge", SupportSurgeParams, ("raw.inbound_calls",), SUPPORT_SURGE_SQL),
        RuleKind("demand_surge", DemandSurgeParams, ("raw.session_requests",), DEMAND_SURGE_SQL),
        RuleKind("tutor_no_show_streak", NoShowStreakParams, ("raw.sessions",), NO_SHOW_STREAK_SQL),
        RuleKind(
            "forecast_accuracy",
            ForecastAccuracyParams,
            ("ml.model_monitoring",),
            FORECAST_ACCURACY_SQL,
        ),
        RuleKind("churn_drift", ChurnDriftParams, ("ml.churn_drift",), CHURN_DRIFT_SQL),
        RuleKind("churn_accuracy", ChurnAccuracyParams, ("ml.churn_accuracy",), CHURN_ACCURACY_SQL),
        RuleKind("sessions_stale", StaleParams, ("raw.sessions",), SESSIONS_STALE_SQL),
        RuleKind(
            "check_failed",
            CheckFailedParams,
            ("quality.check_runs", "quality.check_results"),
            CHECK_FAILED_SQL,
        ),
        RuleKind(
            "watermark_stuck", WatermarkParams, ("raw.watermarks", "raw.quarantine"), WATERMARK_SQL
        ),
        RuleKind("outbox_given_up", OutboxParams, ("app.notification_outbox",), OUTBOX_SQL),
        RuleKind("dagster_run_failure", NoParams, (), event_only=True),
    )
}

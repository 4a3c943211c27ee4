"""What the Forecasts & supply page reads: the latest forecast run per subject
(ml.demand_forecasts), recent actual demand (marts.supply_demand_hourly), the next 7 days' gaps
(marts.demand_supply_gaps_hourly) and the latest backtest per subject (ml.forecast_backtests).
"""

from __future__ import annotations

from app_streamlit.data import Row, cached_query

# Versioned by `forecast_updated` events (see data.EVENT_DOMAINS).
DOMAIN = "forecasts"

SUBJECTS_SQL = """
select distinct subject_id, subject_name
from marts.supply_demand_hourly
where hour_at >= date_trunc('hour', now()) - interval '1 day'
  and hour_at < date_trunc('hour', now()) + interval '1 day'
order by subject_name, subject_id
"""

ACTUALS_SQL = """
select hour_at, requested_sessions
from marts.supply_demand_hourly
where subject_id = %(subject_id)s
  and hour_at >= date_trunc('hour', now()) - make_interval(days => %(days)s::int)
  and hour_at < date_trunc('hour', now())
order by hour_at
"""

FORECAST_SQL = """
with latest as (
    select run_id
    from ml.demand_forecasts
    where subject_id = %(subject_id)s
    order by created_at desc
    limit 1
)
select f.hour_at, f.yhat, f.yhat_lower, f.yhat_upper, f.model, f.is_fallback
from ml.demand_forecasts as f
inner join latest on f.run_id = latest.run_id
where f.subject_id = %(subject_id)s
  and f.hour_at >= date_trunc('hour', now())
  and f.hour_at < date_trunc('hour', now()) + interval '7 days'
order by f.hour_at
"""

# One row per subject, its gaps hour by hour as two arrays (hours after `first_hour`, gap):
# 42 rows rather than 7,000 row objects at a million customers, so a Redis hit decodes in about
# a millisecond instead of ~45 ms (1.4 MB of JSON); `view_charts.gap_heatmap` unfolds them.
GAPS_SQL = """
select subject_id, coalesce(subject_name, subject_id::text) as subject_name,
       date_trunc('hour', now()) as first_hour,
       array_agg((extract(epoch from hour_at - date_trunc('hour', now())) / 3600)::int
                 order by hour_at) as hours_ahead,
       array_agg(round(forecast_supply_gap::numeric, 2)::float8 order by hour_at) as gaps
from marts.demand_supply_gaps_hourly
where hour_at >= date_trunc('hour', now())
  and hour_at < date_trunc('hour', now()) + interval '7 days'
group by subject_id, coalesce(subject_name, subject_id::text)
order by subject_name, subject_id
"""

# Per subject, its latest backtest run: mean MASE per model, which model serves, and the
# seasonal naive's MASE as the yardstick.
BACKTESTS_SQL = """
with latest as (
    select distinct on (subject_id) subject_id, run_id
    from ml.forecast_backtests
    order by subject_id, created_at desc
),
per_model as (
    select b.subject_id, b.model, bool_or(b.is_served) as is_served, avg(b.mase) as mase,
           avg(b.coverage) as coverage
    from ml.forecast_backtests as b
    inner join latest on b.subject_id = latest.subject_id and b.run_id = latest.run_id
    group by b.subject_id, b.model
)
select served.subject_id, served.model as served_model, served.mase, served.coverage,
       naive.mase as seasonal_naive_mase
from per_model as served
left join per_model as naive
    on served.subject_id = naive.subject_id and naive.model = 'seasonal_naive'
where served.is_served
order by served.subject_id
"""


def subjects() -> list[Row] | None:
    """Subjects with hours around now; None while the mart does not exist."""
    return cached_query("forecast_subjects", SUBJECTS_SQL, domain=DOMAIN)


def actuals(subject_id: int, days: int = 7) -> list[Row]:
    params = {"subject_id": subject_id, "days": days}
    return cached_query("forecast_actuals", ACTUALS_SQL, params, domain=DOMAIN) or []


def forecast(subject_id: int) -> list[Row]:
    """The next 7 days of the subject's latest forecast run, with its 95% band."""
    return (
        cached_query("forecast_latest", FORECAST_SQL, {"subject_id": subject_id}, domain=DOMAIN)
        or []
    )


def gaps() -> list[Row]:
    return cached_query("forecast_gaps", GAPS_SQL, domain=DOMAIN) or []


def backtests() -> list[Row]:
    return cached_query("forecast_backtests", BACKTESTS_SQL, domain=DOMAIN) or []

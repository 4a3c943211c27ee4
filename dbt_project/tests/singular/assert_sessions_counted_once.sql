-- Every session counts once in the tutor days and in the KPIs: the totals equal the number of
-- distinct session ids in raw (duplicated versions collapse to one).
{{ config(tags=['heavy']) }}
with raw_sessions as (
    select count(distinct id) as sessions from {{ source('raw', 'sessions') }}
),

tutor_days as (
    select coalesce(sum(sessions_scheduled), 0) as sessions
    from {{ ref('int_tutor_sessions_daily') }}
),

kpis as (
    select coalesce(sum(sessions_scheduled), 0) as sessions
    from {{ ref('int_kpis_daily') }}
    where
        kpi_date <= (
            select max(tutor_day.session_date)
            from {{ ref('int_tutor_sessions_daily') }} as tutor_day
        )
),

future as (
    select coalesce(sum(sessions_scheduled), 0) as sessions
    from {{ ref('int_tutor_sessions_daily') }}
    where
        session_date > (
            select max(kpi_day.kpi_date) from {{ ref('int_kpis_daily') }} as kpi_day
        )
)

select
    raw_sessions.sessions as raw_distinct,
    tutor_days.sessions as tutor_days,
    kpis.sessions as kpis
from raw_sessions, tutor_days, kpis, future
where
    raw_sessions.sessions <> tutor_days.sessions
    or kpis.sessions + future.sessions <> tutor_days.sessions

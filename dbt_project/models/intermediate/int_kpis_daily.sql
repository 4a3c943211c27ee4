{{
    config(
        materialized='incremental',
        unique_key='kpi_date',
        incremental_strategy='replace_keys',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['kpi_date']}, {'columns': ['computed_at']}],
    )
}}
{#- One row per day (UTC) up to the reference date: the overview numbers as they stood at the
    end of that day (today: so far). An incremental run recomputes today, yesterday and the days
    whose sessions changed. The at-risk counts come from the customer_health marts, so
    ops_kpis_daily adds them (an intermediate model never reads a mart). -#}
{%- set prev = previous_run() %}
{%- if prev is not none and execute %}
{#- The days whose sessions changed, as literals: the queries below then read only those days'
    partitions, through the session_date index, instead of all of history. -#}
{%- set changed_days = run_query(
    "select distinct session_date::text from " ~ ref('int_tutor_sessions_daily')
    ~ " where computed_at > '" ~ prev.computed_at ~ "'::timestamptz"
    ~ " and session_date <= " ~ as_of_date()
).columns[0].values() %}
{%- set scope_days -%}
    {%- for day in changed_days %}'{{ day }}'::date, {% endfor -%}
    {{ as_of_date() }}, {{ as_of_date() }} - 1
{%- endset %}
{%- endif %}

with sessions_daily as not materialized (
    select * from {{ ref('int_tutor_sessions_daily') }}
),

days as (
    {%- if prev is none %}
    select generate_series(
        (select min(session_date) from sessions_daily), {{ as_of_date() }}, interval '1 day'
    )::date as kpi_date
    {%- else %}
    select distinct kpi_date
    from unnest(array[{{ scope_days }}]) as scope (kpi_date)
    {%- endif %}
),

session_totals as (
    select
        sessions_daily.session_date as kpi_date,
        sum(sessions_daily.sessions_scheduled) as sessions_scheduled,
        sum(sessions_daily.sessions_resolved) as sessions_resolved,
        sum(sessions_daily.sessions_completed) as sessions_completed,
        sum(sessions_daily.ratings) as ratings,
        sum(sessions_daily.rating_points) as rating_points
    from sessions_daily
    inner join days on sessions_daily.session_date = days.kpi_date
    {%- if prev is not none %}
    where sessions_daily.session_date in ({{ scope_days }})
    {%- endif %}
    group by sessions_daily.session_date
),

customer_spans as (
    -- a customer counts as active from sign-up until deleted or no longer active (the last
    -- change of a closed customer is taken as the day they closed)
    select
        (signed_up_at at time zone 'UTC')::date as active_from,
        (
            case
                when deleted_at is not null then deleted_at
                when customer_status <> 'active' then updated_at
            end at time zone 'UTC'
        )::date as active_until
    from {{ ref('stg_marketplace__customers') }}
),

customer_events as (
    select
        active_from as event_date,
        1 as delta
    from customer_spans
    union all
    select
        active_until as event_date,
        -1 as delta
    from customer_spans
    where active_until is not null
),

calendar as (
    select generate_series(
        (select min(event_date) from customer_events), {{ as_of_date() }}, interval '1 day'
    )::date as event_date
),

active_customers as (
    -- every day: a running sum of sign-ups less departures. One pass over all customers each
    -- run (~1.5 s at a million); counting per day in scope instead cost 0.4 s a day, 28 s for
    -- the 27 days late data touched in the first cycle after a cold build.
    select
        calendar.event_date as kpi_date,
        sum(coalesce(event_totals.delta, 0)) over (
            order by calendar.event_date
        ) as active_customers,
        coalesce(event_totals.signups, 0) as new_customers
    from calendar
    left join (
        select
            event_date,
            sum(delta) as delta,
            count(*) filter (where delta = 1) as signups
        from customer_events
        group by event_date
    ) as event_totals on calendar.event_date = event_totals.event_date
),

alerts as (
    select * from {{ ref('stg_app__alerts') }}
),

open_alerts as (
    -- not resolved at the end of the day (open or acknowledged)
    select
        days.kpi_date,
        count(alerts.alert_id) as open_alerts
    from days
    left join alerts
        on alerts.created_at < {{ utc_day_start('days.kpi_date + 1') }}
        and (
            alerts.resolved_at is null
            or alerts.resolved_at >= {{ utc_day_start('days.kpi_date + 1') }}
        )
    group by days.kpi_date
),

final as (
    select
        days.kpi_date,
        active_customers.active_customers,
        active_customers.new_customers,
        coalesce(session_totals.sessions_scheduled, 0) as sessions_scheduled,
        coalesce(session_totals.sessions_resolved, 0) as sessions_resolved,
        coalesce(session_totals.sessions_completed, 0) as sessions_completed,
        coalesce(session_totals.ratings, 0) as ratings,
        coalesce(session_totals.rating_points, 0) as rating_points,
        open_alerts.open_alerts,
        {{ run_ts() }} as computed_at
    from days
    left join session_totals on days.kpi_date = session_totals.kpi_date
    left join active_customers on days.kpi_date = active_customers.kpi_date
    left join open_alerts on days.kpi_date = open_alerts.kpi_date
)

select * from final

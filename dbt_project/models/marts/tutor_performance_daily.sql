{%- set keep_rows = 'sessions_scheduled > 0' %}
{#- Compression on TimescaleDB: a tutor has at most one row a day, so tutor_id segments held
    at most 7 rows per 7-day chunk; old days are read per date range over all tutors (30-day
    windows, KPIs). So: no segments, rows ordered by day then tutor, 30-day chunks. -#}
{{
    config(
        materialized='incremental',
        unique_key=['tutor_id', 'performance_date'],
        incremental_strategy='replace_keys',
        on_schema_change='append_new_columns',
        meta={
            'insert_filter': keep_rows,
            'timeseries': {
                'time_column': 'performance_date',
                'partition': 'month',
                'chunk': '30 days',
                'compress_after': '45 days',
                'segment_by': '',
                'order_by': 'performance_date desc, tutor_id',
                'ahead': '1 month',
                'indexes': [
                    {'columns': ['tutor_id', 'performance_date']},
                    {'columns': ['performance_date']},
                    {'columns': ['computed_at']},
                ],
            },
        },
        pre_hook="{{ timeseries_prepare() }}",
        post_hook="{{ timeseries_finalize() }}",
    )
}}
{#- One row per tutor per day with sessions: the day's numbers, and the tutor's performance
    over the 30 days ending that day (rates, success score, underperforming flag and reason).

    A change to a tutor's day moves the trailing windows of the 29 days after it, so an
    incremental run recomputes, for each tutor with changed days, every day from the first
    changed one on. -#}
{%- set prev = previous_run() %}
{%- set counts = var('tutor_daily_counts') %}

with facts as not materialized (
    select * from {{ ref('int_tutor_sessions_daily') }}
),

tutors as (
    select * from {{ ref('int_tutors_aggregated') }}
),

{% if prev is not none -%}
changed as (
    select
        tutor_id,
        min(session_date) as from_date
    from facts
    where computed_at > '{{ prev.computed_at }}'::timestamptz
    group by tutor_id
),

window_facts as (
    select facts.*
    from facts
    inner join changed
        on facts.tutor_id = changed.tutor_id
        and facts.session_date >= changed.from_date - 29
),
{%- else %}
window_facts as (
    select * from facts
),
{%- endif %}

trailing_window as (
    select
        window_facts.*,
        -- a day's counts fit an int: summed as bigint they would be numeric, 7 s slower at S10
        {%- for column in counts %}
        sum({{ column }}::int) over last_30_days as {{ column }}_30d,
        {%- endfor %}
        -- available minutes over the 30 days, from the tutor's current weekly availability
        coalesce(tutors.weekly_available_hours, 0) * 60 * 30 / 7 as available_minutes_30d,
        60 * coalesce(
            case extract(isodow from window_facts.session_date)::int
                {%- for day in range(7) %}
                when {{ day + 1 }} then tutors.available_hours_dow{{ day }}
                {%- endfor %}
            end,
            0
        ) as available_minutes
    from window_facts
    left join tutors on window_facts.tutor_id = tutors.tutor_id
    window last_30_days as (
        partition by window_facts.tutor_id
        order by window_facts.session_date
        range between interval '29 days' preceding and current row
    )
),

in_scope as (
    select trailing_window.*
    from trailing_window
    {%- if prev is not none %}
    inner join changed
        on trailing_window.tutor_id = changed.tutor_id
        and trailing_window.session_date >= changed.from_date
    {%- endif %}
),

rated as (
    {{ tutor_rates('in_scope') }}
),

judged as (
    {{ tutor_scores('rated') }}
),

final as (
    select
        tutor_id,
        session_date as performance_date,
        sessions_scheduled,
        sessions_completed,
        tutor_no_shows,
        tutor_cancellations,
        customer_no_shows,
        customer_cancellations,
        ratings,
        round(rating_points::numeric / nullif(ratings, 0), 2) as avg_rating,
        first_sessions_succeeded,
        first_sessions_failed,
        sessions_rebooked,
        completed_minutes,
        available_minutes,
        round(completed_minutes::numeric / nullif(available_minutes, 0), 4) as utilization,
        sessions_scheduled_30d,
        sessions_completed_30d,
        {{ tutor_window_columns() }},
        {{ as_of_date() }} as as_of_date,
        {{ run_ts() }} as computed_at
    from judged
)

select * from final
{{ full_build_filter(keep_rows) }}

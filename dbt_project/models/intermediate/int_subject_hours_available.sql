{{
    config(
        materialized='incremental',
        unique_key=['subject_id', 'day_of_week', 'hour_of_day'],
        incremental_strategy='replace_keys',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['subject_id', 'day_of_week', 'hour_of_day']}],
    )
}}
{#- One row per subject per weekly hour slot (UTC, all 168): how many active tutors teach the
    subject and are available then - the supply capacity of every such hour. Every subject is
    here, so the hourly models take their subject grid from this model. Recomputed as a whole
    when tutors' availability, what they teach or the subjects changed since the previous run;
    otherwise the run writes nothing. -#}
{%- set prev = previous_run() %}

with tutor_hours as not materialized (
    select * from {{ ref('int_tutor_hours_available') }}
),

teaches as not materialized (
    select distinct
        tutor_id,
        subject_id
    from {{ ref('stg_marketplace__tutor_subjects') }}
),

{% if prev is not none -%}
has_changes as (
    select exists (
        select 1 from tutor_hours where computed_at > '{{ prev.computed_at }}'::timestamptz
    )
    or exists (
        select 1 from {{ ref('stg_marketplace__tutor_subjects') }} as changed
        where {{ changed_since('changed', prev) }}
    )
    or exists (
        select 1 from {{ ref('stg_marketplace__subjects') }} as changed
        where {{ changed_since('changed', prev) }}
    ) as yes
),
{%- endif %}

grid as (
    select
        subjects.subject_id,
        weekdays.day_of_week,
        day_hours.hour_of_day
    from {{ ref('stg_marketplace__subjects') }} as subjects
    cross join generate_series(0, 6) as weekdays (day_of_week)
    cross join generate_series(0, 23) as day_hours (hour_of_day)
    {%- if prev is not none %}
    where (select has_changes.yes from has_changes)
    {%- endif %}
),

capacity as (
    select
        teaches.subject_id,
        tutor_hours.day_of_week,
        tutor_hours.hour_of_day,
        count(*) as available_tutors
    from tutor_hours
    inner join teaches on tutor_hours.tutor_id = teaches.tutor_id
    {%- if prev is not none %}
    where (select has_changes.yes from has_changes)
    {%- endif %}
    group by teaches.subject_id, tutor_hours.day_of_week, tutor_hours.hour_of_day
),

final as (
    select
        grid.subject_id,
        grid.day_of_week,
        grid.hour_of_day,
        coalesce(capacity.available_tutors, 0) as available_tutors,
        {{ run_ts() }} as computed_at
    from grid
    left join capacity
        on grid.subject_id = capacity.subject_id
        and grid.day_of_week = capacity.day_of_week
        and grid.hour_of_day = capacity.hour_of_day
)

select * from final

{%- set keep_rows = 'day_of_week is not null' %}
{{
    config(
        materialized='incremental',
        unique_key='tutor_id',
        incremental_strategy='replace_keys',
        on_schema_change='append_new_columns',
        meta={'insert_filter': keep_rows},
        indexes=[
            {'columns': ['tutor_id', 'day_of_week', 'hour_of_day']},
            {'columns': ['computed_at']},
        ],
    )
}}
{#- One row per active tutor per weekly hour slot (UTC) in which the tutor is available;
    overlapping availability blocks count once. Incremental: tutors whose own row or
    availability blocks arrived since the previous run; a tutor who is no longer active comes
    through without slots and is removed. -#}
{%- set prev = previous_run() %}

with tutors as not materialized (
    select * from {{ ref('stg_marketplace__tutors') }}
),

availabilities as not materialized (
    select * from {{ ref('stg_marketplace__tutor_availabilities') }}
),

scope as (
    select tutor_id from tutors
    {%- if prev is not none %}
    where {{ changed_since('tutors', prev) }}
    union
    select tutor_id from availabilities
    where {{ changed_since('availabilities', prev) }}
    {%- endif %}
),

expanded as (
    select distinct
        availabilities.tutor_id,
        availabilities.day_of_week,
        slots.hour_of_day
    from availabilities
    inner join tutors on availabilities.tutor_id = tutors.tutor_id
    cross join lateral generate_series(
        availabilities.start_hour, availabilities.end_hour - 1
    ) as slots (hour_of_day)
    where
        tutors.is_active
        and availabilities.tutor_id in (select scope.tutor_id from scope)
),

final as (
    select
        scope.tutor_id,
        expanded.day_of_week,
        expanded.hour_of_day,
        {{ run_ts() }} as computed_at
    from scope
    left join expanded on scope.tutor_id = expanded.tutor_id
)

select * from final
{{ full_build_filter(keep_rows) }}

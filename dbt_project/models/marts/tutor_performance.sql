{#- One row per active tutor: performance over the 30 days ending on the reference date. -#}
{%- set counts = var('tutor_daily_counts') %}

with tutors as (
    select * from {{ ref('int_tutors_aggregated') }}
    where is_active
),

window_facts as (
    select
        tutor_id,
        {%- for column in counts %}
        sum({{ column }}) as {{ column }}_30d{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref('int_tutor_sessions_daily') }}
    where
        session_date > {{ as_of_date() }} - 30
        and session_date <= {{ as_of_date() }}
    group by tutor_id
),

sums as (
    select
        tutors.tutor_id,
        tutors.subjects_taught,
        tutors.weekly_available_hours,
        {%- for column in counts %}
        coalesce(window_facts.{{ column }}_30d, 0) as {{ column }}_30d,
        {%- endfor %}
        tutors.weekly_available_hours * 60 * 30 / 7 as available_minutes_30d
    from tutors
    left join window_facts on tutors.tutor_id = window_facts.tutor_id
),

rated as (
    {{ tutor_rates('sums') }}
),

judged as (
    {{ tutor_scores('rated') }}
),

final as (
    select
        tutor_id,
        subjects_taught,
        weekly_available_hours,
        sessions_scheduled_30d,
        sessions_completed_30d,
        tutor_no_shows_30d,
        tutor_cancellations_30d,
        ratings_30d,
        {{ tutor_window_columns() }},
        {{ as_of_date() }} as as_of_date,
        {{ run_ts() }} as computed_at
    from judged
)

select * from final

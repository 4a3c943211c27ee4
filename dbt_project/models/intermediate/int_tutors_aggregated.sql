{{ config(materialized='table') }}

-- One row per tutor: what the tutor offers each week (subjects, available hours per weekday).
-- Utilization in the tutor marts divides booked time by these hours.
with tutors as (
    select * from {{ ref('stg_marketplace__tutors') }}
),

subjects as (
    select
        tutor_id,
        count(distinct subject_id) as subjects_taught
    from {{ ref('stg_marketplace__tutor_subjects') }}
    group by tutor_id
),

hours as (
    select
        tutor_id,
        count(*) as weekly_available_hours,
        {%- for day in range(7) %}
        count(*) filter (
            where day_of_week = {{ day }}
        ) as available_hours_dow{{ day }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref('int_tutor_hours_available') }}
    group by tutor_id
),

final as (
    select
        tutors.tutor_id,
        tutors.is_active,
        tutors.tutor_status,
        tutors.hired_at,
        coalesce(subjects.subjects_taught, 0) as subjects_taught,
        coalesce(hours.weekly_available_hours, 0) as weekly_available_hours,
        -- available hours per weekday (0 = Monday .. 6 = Sunday)
        {%- for day in range(7) %}
        coalesce(
            hours.available_hours_dow{{ day }}, 0
        ) as available_hours_dow{{ day }}{{ ',' if not loop.last }}
        {%- endfor %}
    from tutors
    left join subjects on tutors.tutor_id = subjects.tutor_id
    left join hours on tutors.tutor_id = hours.tutor_id
)

select * from final

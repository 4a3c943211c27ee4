{{
    config(
        materialized='rollup',
        meta={'rollup': {'unique_key': ['subject_id', 'day_at'], 'refresh_start': '45 days'}},
    )
}}
-- One row per subject per UTC day: supply_demand_hourly rolled up (continuous aggregate on
-- TimescaleDB, materialized view otherwise).
select
    {{ time_bucket('1 day', 'hour_at') }} as day_at,
    subject_id,
    sum(requested_sessions) as requested_sessions,
    sum(filled_sessions) as filled_sessions,
    sum(unfilled_requests) as unfilled_requests,
    sum(available_tutor_hours) as available_tutor_hours,
    sum(booked_tutor_hours) as booked_tutor_hours,
    sum(open_tutor_hours) as open_tutor_hours,
    sum(supply_gap) as supply_gap,
    sum(case when supply_gap > 0 then 1 else 0 end) as hours_short_of_tutors
from {{ ref('supply_demand_hourly') }}
group by 1, 2

{{
    config(
        materialized='rollup',
        meta={'rollup': {'unique_key': ['subject_category', 'hour_at'], 'refresh_start': '45 days'}},
    )
}}
-- One row per subject category per hour: supply_demand_hourly rolled up for the overview
-- (continuous aggregate on TimescaleDB, materialized view otherwise).
select
    {{ time_bucket('1 hour', 'hour_at') }} as hour_at,
    subject_category,
    sum(requested_sessions) as requested_sessions,
    sum(filled_sessions) as filled_sessions,
    sum(available_tutor_hours) as available_tutor_hours,
    sum(booked_tutor_hours) as booked_tutor_hours,
    sum(open_tutor_hours) as open_tutor_hours,
    sum(supply_gap) as supply_gap
from {{ ref('supply_demand_hourly') }}
group by 1, 2

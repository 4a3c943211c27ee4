-- Supply is never negative and bookings never exceed what was available.
select
    subject_id,
    hour_at,
    available_tutor_hours,
    booked_tutor_hours,
    open_tutor_hours
from {{ ref('supply_demand_hourly') }}
where
    available_tutor_hours < 0
    or booked_tutor_hours < 0
    or open_tutor_hours < 0
    or booked_tutor_hours > available_tutor_hours

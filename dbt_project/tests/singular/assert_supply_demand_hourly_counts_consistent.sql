-- The subject-hours the latest build wrote: demand counts never negative and never more
-- filled than requested sessions (tutor-hours: assert_supply_never_negative; keys and fill
-- rate: _marts.yml).
with latest as (
    select max(computed_at) as computed_at
    from {{ ref('supply_demand_hourly') }}
)

select
    hours.subject_id,
    hours.hour_at
from {{ ref('supply_demand_hourly') }} as hours
inner join latest on hours.computed_at = latest.computed_at
where
    hours.requested_sessions < 0
    or hours.filled_sessions < 0
    or hours.unfilled_requests < 0
    or hours.pending_requests < 0
    or hours.requested_sessions < hours.filled_sessions

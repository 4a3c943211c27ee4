-- The tutor days the latest build wrote: the day's counts never negative and never more
-- completed than scheduled, ratings 1-5, utilization not negative, and the trailing 30-day
-- rates 0-1 (keys, success score and first-session rate: _marts.yml, daily over all history).
with latest as (
    select max(computed_at) as computed_at
    from {{ ref('tutor_performance_daily') }}
)

select
    tutor_days.tutor_id,
    tutor_days.performance_date
from {{ ref('tutor_performance_daily') }} as tutor_days
inner join latest on tutor_days.computed_at = latest.computed_at
where
    tutor_days.sessions_scheduled < 0
    or tutor_days.sessions_completed < 0
    or tutor_days.tutor_no_shows < 0
    or tutor_days.tutor_cancellations < 0
    or tutor_days.customer_no_shows < 0
    or tutor_days.customer_cancellations < 0
    or tutor_days.ratings < 0
    or tutor_days.sessions_completed_30d < 0
    or tutor_days.sessions_scheduled < tutor_days.sessions_completed
    or tutor_days.sessions_scheduled_30d < tutor_days.sessions_completed_30d
    or tutor_days.avg_rating not between 1 and 5
    or tutor_days.avg_rating_30d not between 1 and 5
    or tutor_days.utilization < 0
    or tutor_days.utilization_30d < 0
    or tutor_days.tutor_no_show_rate_30d not between 0 and 1
    or tutor_days.tutor_cancellation_rate_30d not between 0 and 1
    or tutor_days.rebooking_rate_30d not between 0 and 1

-- tutor_performance: rates 0-1, average rating 1-5, utilization, weekly hours and counts in
-- range, never more completed than scheduled sessions (key and success score: _marts.yml).
select tutor_id
from {{ ref('tutor_performance') }}
where
    computed_at is null
    or weekly_available_hours not between 0 and 168
    or tutor_no_show_rate_30d not between 0 and 1
    or tutor_cancellation_rate_30d not between 0 and 1
    or rebooking_rate_30d not between 0 and 1
    or first_session_success_rate_30d not between 0 and 1
    or avg_rating_30d not between 1 and 5
    or utilization_30d < 0
    or sessions_completed_30d < 0
    or sessions_scheduled_30d < sessions_completed_30d

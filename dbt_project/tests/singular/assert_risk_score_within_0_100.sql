-- The risk score, its components' points and the 7-day-old score all lie within 0-100.
select
    customer_id,
    risk_score,
    base_risk_score,
    risk_score_7d_ago
from {{ ref('customer_health') }}
where
    risk_score not between 0 and 100
    or base_risk_score not between 0 and 100
    or risk_score_7d_ago not between 0 and 100
    or least(recency_points, frequency_points, rating_points, support_calls_points,
             goal_progress_points, tutor_switching_points, tenure_points) < 0

-- Every customer_health value the app and the alert rules read lies in its range: component
-- risks 0-1, counts never negative, ratings 1-5, goal progress 0-100, and last week's tier one
-- of the tiers. (The score itself: see
-- assert_risk_score_within_0_100; the key and current tier: _marts.yml.)
select customer_id
from {{ ref('customer_health') }}
where
    recency_risk not between 0 and 1
    or frequency_risk not between 0 and 1
    or rating_risk not between 0 and 1
    or support_calls_risk not between 0 and 1
    or goal_progress_risk not between 0 and 1
    or tutor_switching_risk not between 0 and 1
    or tenure_risk not between 0 and 1
    or days_since_last_session < 0
    or sessions_30d < 0
    or inbound_calls_30d < 0
    or avg_rating_30d not between 1 and 5
    or goal_progress_pct not between 0 and 100
    or risk_tier_7d_ago not in ('low', 'medium', 'high', 'critical')

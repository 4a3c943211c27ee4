-- The component points add up to the base score, and the weights of the components with data
-- add up to 100 (renormalized, never treating a missing component as zero risk).
select
    customer_id,
    base_risk_score
from {{ ref('customer_health') }}
where
    abs(
        recency_points + frequency_points + rating_points + support_calls_points
        + goal_progress_points + tutor_switching_points + tenure_points - base_risk_score
    ) > 0.1
    or abs(
        recency_weight + frequency_weight + rating_weight + support_calls_weight
        + goal_progress_weight + tutor_switching_weight + tenure_weight - 100
    ) > 0.1
    or (rating_risk is null and rating_weight <> 0)

-- One row per active customer: a rule-based churn-risk score 0-100 with its tier.
{%- set w = var('risk_weights') %}
{%- set t = var('risk_tiers') %}
with customers as (
    select * from {{ ref('int_customers_aggregated') }}
    where customer_status = 'active' and not is_deleted
),

components as (
    -- Each component is a risk in [0, 1]; null means "no data" and is left out below.
    select
        *,
        least(days_since_last_session / 30.0, 1.0) as recency_risk,
        greatest(0.0, 1.0 - sessions_30d / 4.0) as frequency_risk,
        (5.0 - avg_rating_30d) / 4.0 as rating_risk,
        least(inbound_calls_30d / 3.0, 1.0) as support_calls_risk,
        case
            when distinct_tutors_90d = 0 then null
            else least((distinct_tutors_90d - 1) / 3.0, 1.0)
        end as tutor_switching_risk,
        case
            when goal_progress_pct is null then null
            else 1.0 - goal_progress_pct / 100.0
        end as goal_progress_risk,
        greatest(0.0, 1.0 - tenure_days / 180.0) as tenure_risk
    from customers
),

weighted as (
    select
        *,
        coalesce(recency_risk * {{ w.recency }}, 0)
        + coalesce(frequency_risk * {{ w.frequency }}, 0)
        + coalesce(rating_risk * {{ w.rating }}, 0)
        + coalesce(support_calls_risk * {{ w.support_calls }}, 0)
        + coalesce(tutor_switching_risk * {{ w.tutor_switching }}, 0)
        + coalesce(goal_progress_risk * {{ w.goal_progress }}, 0)
        + coalesce(tenure_risk * {{ w.tenure }}, 0) as weighted_sum,
        (case when recency_risk is null then 0 else {{ w.recency }} end)
        + (case when frequency_risk is null then 0 else {{ w.frequency }} end)
        + (case when rating_risk is null then 0 else {{ w.rating }} end)
        + (case when support_calls_risk is null then 0 else {{ w.support_calls }} end)
        + (case when tutor_switching_risk is null then 0 else {{ w.tutor_switching }} end)
        + (case when goal_progress_risk is null then 0 else {{ w.goal_progress }} end)
        + (case when tenure_risk is null then 0 else {{ w.tenure }} end) as weight_present
    from components
),

scored as (
    select
        *,
        round((100.0 * weighted_sum / nullif(weight_present, 0))::numeric, 1) as risk_score
    from weighted
)

select
    customer_id,
    risk_score,
    case
        when risk_score >= {{ t.critical }} then 'critical'
        when risk_score >= {{ t.high }} then 'high'
        when risk_score >= {{ t.medium }} then 'medium'
        else 'low'
    end as risk_tier,
    round(days_since_last_session::numeric, 1) as days_since_last_session,
    sessions_30d,
    round(avg_rating_30d::numeric, 2) as avg_rating_30d,
    inbound_calls_30d,
    distinct_tutors_90d,
    goal_progress_pct,
    round(tenure_days::numeric, 1) as tenure_days,
    acquisition_channel,
    {{ as_of() }} as computed_at
from scored

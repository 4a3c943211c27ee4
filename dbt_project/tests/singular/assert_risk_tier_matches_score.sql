-- The tier is the one the score falls in (edges from var risk_tiers, lower edge inclusive),
-- and a forced tier never sits below `high`.
{%- set t = var('risk_tiers') %}
select
    customer_id,
    risk_score,
    risk_tier,
    risk_forced_reason
from {{ ref('customer_health') }}
where
    risk_tier <> case
        when risk_score >= {{ t.critical }} then 'critical'
        when risk_score >= {{ t.high }} then 'high'
        when risk_score >= {{ t.medium }} then 'medium'
        else 'low'
    end
    or (risk_forced_reason is not null and risk_tier not in ('high', 'critical'))

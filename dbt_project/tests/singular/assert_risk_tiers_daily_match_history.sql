{{ config(tags=['heavy']) }}
-- Every day's tier counts equal a fresh count of that day's risk snapshots (the incremental
-- model recounts only the newest days; this proves the older ones still hold).
with fresh as (
    select
        snapshot_date,
        count(*) filter (where risk_tier = 'low') as low_customers,
        count(*) filter (where risk_tier = 'medium') as medium_customers,
        count(*) filter (where risk_tier = 'high') as high_customers,
        count(*) filter (where risk_tier = 'critical') as critical_customers
    from {{ ref('customer_health_history') }}
    group by snapshot_date
)

select
    fresh.snapshot_date,
    fresh.low_customers,
    counted.low_customers as counted_low_customers
from fresh
inner join {{ ref('risk_tiers_daily') }} as counted
    on fresh.snapshot_date = counted.snapshot_date
where
    fresh.low_customers <> counted.low_customers
    or fresh.medium_customers <> counted.medium_customers
    or fresh.high_customers <> counted.high_customers
    or fresh.critical_customers <> counted.critical_customers

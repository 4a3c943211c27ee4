-- The rows the latest build wrote to customer_health_history have their day (keys, score and
-- tier: _marts.yml, over the whole history, daily).
with latest as (
    select max(computed_at) as computed_at
    from {{ ref('customer_health_history') }}
)

select
    history.customer_id,
    history.snapshot_date
from {{ ref('customer_health_history') }} as history
inner join latest on history.computed_at = latest.computed_at
where history.snapshot_date is null

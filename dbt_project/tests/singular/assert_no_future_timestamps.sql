{{ config(tags=['heavy']) }}
-- Nothing in the marts is stamped in the future (computed_at), nor describes days after the
-- reference date except the supply outlook.
select
    'customer_health' as model_name,
    count(*) as rows_in_future
from {{ ref('customer_health') }}
where computed_at > now() + interval '5 minutes' or last_session_date > as_of_date
having count(*) > 0
union all
select
    'customer_health_history' as model_name,
    count(*) as rows_in_future
from {{ ref('customer_health_history') }}
where computed_at > now() + interval '5 minutes' or snapshot_date > (now() at time zone 'UTC')::date
having count(*) > 0
union all
select
    'tutor_performance_daily' as model_name,
    count(*) as rows_in_future
from {{ ref('tutor_performance_daily') }}
where computed_at > now() + interval '5 minutes'
having count(*) > 0
union all
select
    'ops_kpis_daily' as model_name,
    count(*) as rows_in_future
from {{ ref('ops_kpis_daily') }}
where kpi_date > (now() at time zone 'UTC')::date or computed_at > now() + interval '5 minutes'
having count(*) > 0
union all
select
    'supply_demand_hourly' as model_name,
    count(*) as rows_in_future
from {{ ref('supply_demand_hourly') }}
where
    hour_at > now() + interval '{{ var("supply_horizon_days") }} days 1 hour'
    or computed_at > now() + interval '5 minutes'
having count(*) > 0

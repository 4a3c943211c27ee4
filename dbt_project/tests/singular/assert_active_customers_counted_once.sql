-- Today's active customers in the KPIs are exactly the customers scored in customer_health:
-- deleted and closed customers are in neither, nobody twice.
select
    kpis.active_customers,
    health.customers
from {{ ref('ops_kpis_daily') }} as kpis
cross join (select count(*) as customers from {{ ref('customer_health') }}) as health
where
    kpis.kpi_date = (select max(latest.kpi_date) from {{ ref('ops_kpis_daily') }} as latest)
    and kpis.active_customers <> health.customers

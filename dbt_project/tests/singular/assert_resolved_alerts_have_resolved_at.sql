-- app.alerts (written by the alert rules, outside dbt): an alert is resolved exactly when it has
-- a resolved_at. int_kpis_daily counts an alert open until its resolved_at, so a resolved alert
-- without one would stay open in the KPIs forever.
select id
from {{ source('app', 'alerts') }}
where (status = 'resolved') <> (resolved_at is not null)

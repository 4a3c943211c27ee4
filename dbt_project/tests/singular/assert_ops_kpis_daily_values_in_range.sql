-- The overview numbers: counts never negative, average rating 1-5, and never more critical
-- than at-risk customers (key and completion rate: _marts.yml).
select kpi_date
from {{ ref('ops_kpis_daily') }}
where
    computed_at is null
    or active_customers < 0
    or sessions_completed < 0
    or at_risk_customers < 0
    or avg_rating not between 1 and 5
    or at_risk_customers < critical_customers

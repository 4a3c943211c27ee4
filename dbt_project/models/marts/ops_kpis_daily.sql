{#- One row per day: the overview numbers with their change from the day before and from the
    same day a week before (absolute differences; rates in percentage points). At-risk counts
    come from the daily risk snapshots (none before scoring started, nor past the snapshots'
    retention). -#}
{%- set metrics = [
    'active_customers', 'sessions_completed', 'completion_rate', 'avg_rating',
    'at_risk_customers', 'open_alerts'
] %}

with kpis as (
    select * from {{ ref('int_kpis_daily') }}
),

risk as (
    -- the daily risk snapshots hold today's scores too (every customer customer_health holds
    -- is rescored on a new day and on each change), counted per day by risk_tiers_daily
    select
        snapshot_date as kpi_date,
        high_customers + critical_customers as at_risk_customers,
        critical_customers
    from {{ ref('risk_tiers_daily') }}
    where snapshot_date <= {{ as_of_date() }}
),

facts as (
    select
        kpis.kpi_date,
        kpis.active_customers,
        kpis.new_customers,
        kpis.sessions_scheduled,
        kpis.sessions_completed,
        round(100.0 * kpis.sessions_completed / nullif(kpis.sessions_resolved, 0), 2)
            as completion_rate,
        round(kpis.rating_points::numeric / nullif(kpis.ratings, 0), 2) as avg_rating,
        -- today always has counts, 0 before anyone is scored
        {%- for count in ['at_risk_customers', 'critical_customers'] %}
        case
            when kpis.kpi_date = {{ as_of_date() }} then coalesce(risk.{{ count }}, 0)
            else risk.{{ count }}
        end as {{ count }},
        {%- endfor %}
        kpis.open_alerts
    from kpis
    left join risk on kpis.kpi_date = risk.kpi_date
),

final as (
    select
        facts.*,
        {%- for metric in metrics %}
        facts.{{ metric }} - day_before.{{ metric }} as {{ metric }}_change_1d,
        facts.{{ metric }} - week_before.{{ metric }} as {{ metric }}_change_7d,
        {%- endfor %}
        {{ run_ts() }} as computed_at
    from facts
    left join facts as day_before on facts.kpi_date - 1 = day_before.kpi_date
    left join facts as week_before on facts.kpi_date - 7 = week_before.kpi_date
)

select * from final

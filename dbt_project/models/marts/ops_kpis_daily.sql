{#- One row per day: the overview numbers with their change from the day before and from the
    same day a week before (absolute differences; rates in percentage points). -#}
{%- set metrics = [
    'active_customers', 'sessions_completed', 'completion_rate', 'avg_rating',
    'at_risk_customers', 'open_alerts'
] %}

with facts as (
    select
        kpi_date,
        active_customers,
        new_customers,
        sessions_scheduled,
        sessions_completed,
        round(100.0 * sessions_completed / nullif(sessions_resolved, 0), 2) as completion_rate,
        round(rating_points::numeric / nullif(ratings, 0), 2) as avg_rating,
        at_risk_customers,
        critical_customers,
        open_alerts
    from {{ ref('int_kpis_daily') }}
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

{{
    config(
        materialized='incremental',
        unique_key='snapshot_date',
        incremental_strategy='replace_keys',
        on_schema_change='append_new_columns',
    )
}}
{#- Customers per risk tier per UTC day, from the daily risk snapshots. Counting the snapshots
    of every day in each cycle grows with history (90 days x every active customer: ~37 M rows
    at a million customers); here a cycle recounts only the newest day already counted and
    today, since a past day's snapshots no longer change. The overview's tier chart reads
    today's row (4 numbers) instead of grouping all of marts.customer_health per page view. -#}
{%- set since = none %}
{%- if execute and is_incremental() %}
    {%- set since = run_query('select max(snapshot_date)::text from ' ~ this).columns[0].values()[0] %}
{%- endif %}

select
    snapshot_date,
    count(*) filter (where risk_tier = 'low') as low_customers,
    count(*) filter (where risk_tier = 'medium') as medium_customers,
    count(*) filter (where risk_tier = 'high') as high_customers,
    count(*) filter (where risk_tier = 'critical') as critical_customers,
    count(*) as customers,
    {{ run_ts() }} as computed_at
from {{ ref('customer_health_history') }}
where
    snapshot_date <= {{ as_of_date() }}
    {%- if since is not none %}
    and snapshot_date >= '{{ since }}'::date
    {%- endif %}
group by snapshot_date

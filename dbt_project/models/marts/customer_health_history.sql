{%- set keep_rows = 'risk_score is not null' %}
{{
    config(
        materialized='incremental',
        unique_key=['customer_id', 'snapshot_date'],
        incremental_strategy='replace_keys',
        on_schema_change='append_new_columns',
        full_refresh=false,
        meta={
            'insert_filter': keep_rows,
            'timeseries': {
                'time_column': 'snapshot_date',
                'partition': 'day',
                'chunk': '1 day',
                'compress_after': '7 days',
                'segment_by': 'customer_id',
                'retention': '90 days',
                'ahead': '1 day',
                'indexes': [
                    {'columns': ['customer_id', 'snapshot_date']},
                    {'columns': ['computed_at']},
                ],
            },
        },
        pre_hook="{{ timeseries_prepare() }}",
        post_hook="{{ timeseries_finalize() }}",
    )
}}
{#- One row per active customer per day: the day's latest risk score and tier, written
    whenever customer_health rescored the customer (every customer once a day). A customer who
    leaves loses the day's row; earlier days stay. Retention: 90 days. `full_refresh: false`,
    because a rebuild cannot recreate past snapshots. -#}
{%- set prev = previous_run() %}

with rescored as (
    select customer_id
    from {{ ref('int_customers_aggregated') }}
    where
        is_current
        {%- if prev is not none %}
        and computed_at > '{{ prev.computed_at }}'::timestamptz
        {%- endif %}
),

health as (
    select * from {{ ref('customer_health') }}
),

final as (
    select
        rescored.customer_id,
        {{ as_of_date() }} as snapshot_date,
        health.risk_score,
        health.risk_tier,
        health.base_risk_score,
        health.risk_forced_reason,
        health.top_risk_component,
        health.churn_probability,
        {{ run_ts() }} as computed_at
    from rescored
    left join health on rescored.customer_id = health.customer_id
)

select * from final
{{ full_build_filter(keep_rows) }}

{%- set keep_rows = 'risk_score is not null' %}
{#- Compression on TimescaleDB: one row per customer per day, read per day over all
    customers (int_kpis_daily, checks). Segmenting by customer_id left one row per segment and
    made compressed chunks bigger. So: no segments, rows ordered by day then customer (runs of
    equal dates and near-consecutive ids compress well; per-batch min/max on the date lets a
    day's query skip batches), 7-day chunks. Retention drops whole chunks: up to 97 days stay. -#}
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
                'chunk': '7 days',
                'compress_after': '7 days',
                'segment_by': '',
                'order_by': 'snapshot_date desc, customer_id',
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
        {{ run_ts() }} as computed_at
    from rescored
    left join health on rescored.customer_id = health.customer_id
)

select * from final
{{ full_build_filter(keep_rows) }}

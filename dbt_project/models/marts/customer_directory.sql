{%- set keep_rows = 'not is_deleted' %}
{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='replace_keys',
        on_schema_change='append_new_columns',
        meta={'insert_filter': keep_rows},
        pre_hook=["{{ ensure_pg_trgm() }}"],
        post_hook=["{{ trigram_index('full_name') }}", "{{ trigram_index('email') }}"],
    )
}}
{#- Who each customer is, for the app's lists and its name search (the app never reads raw.*).
    Incremental: customers ingested since the previous run; soft-deleted ones come through and
    are removed (meta.insert_filter). Trigram GIN indexes (pg_trgm) make `ilike '%text%'` on
    names and e-mails an index scan at 1,000,000 customers. -#}
{%- set prev = previous_run() %}

select
    customers.customer_id,
    customers.full_name,
    customers.email,
    customers.customer_status,
    customers.is_active,
    customers.is_deleted,
    {{ run_ts() }} as computed_at
from {{ ref('stg_marketplace__customers') }} as customers
{%- if prev is not none %}
where {{ changed_since('customers', prev) }}
{%- endif %}
{{ full_build_filter(keep_rows) }}

{%- set keep_rows = 'not is_deleted' %}
{{
    config(
        materialized='incremental',
        unique_key='tutor_id',
        incremental_strategy='replace_keys',
        on_schema_change='append_new_columns',
        meta={'insert_filter': keep_rows},
    )
}}
{#- Who each tutor is, for the app's tutor lists and name search (the app never reads raw.*).
    Incremental like customer_directory; tutors are few (one per ~50 customers), so a name
    search scans this narrow table without a trigram index. -#}
{%- set prev = previous_run() %}

select
    tutors.tutor_id,
    tutors.full_name,
    tutors.email,
    tutors.tutor_status,
    tutors.is_active,
    tutors.is_deleted,
    {{ run_ts() }} as computed_at
from {{ ref('stg_marketplace__tutors') }} as tutors
{%- if prev is not none %}
where {{ changed_since('tutors', prev) }}
{%- endif %}
{{ full_build_filter(keep_rows) }}

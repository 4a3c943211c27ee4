{{
    config(
        materialized='incremental',
        unique_key='session_id',
        incremental_strategy='replace_keys',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['session_id'], 'unique': true},
            {'columns': ['customer_id', 'scheduled_at']},
            {'columns': ['tutor_id', 'scheduled_at']},
            {'columns': ['scheduled_at'], 'type': 'brin'},
            {'columns': ['computed_at']},
        ],
    )
}}
{#- One row per session (the newest version), kept as an indexed table: every session-based
    model reads it instead of the staging view, so the deduplication of raw.sessions runs once
    per new row rather than once per model, and the models get the indexes they need
    (customer, tutor, schedule, and computed_at to find what changed). Incremental: sessions
    ingested since the previous run. -#}
{%- set prev = previous_run() %}

with sessions as (
    -- `changed` is read by the incremental filter, which sqlfluff does not render
    select * from {{ ref('stg_marketplace__sessions') }} as changed  -- noqa: AL05
    {%- if prev is not none %}
    where {{ changed_since('changed', prev) }}
    {%- endif %}
),

final as (
    select
        session_id,
        customer_id,
        tutor_id,
        subject_id,
        session_request_id,
        scheduled_at,
        ends_at,
        (scheduled_at at time zone 'UTC')::date as session_date,
        duration_minutes,
        session_status,
        cancelled_by,
        no_show_by,
        is_completed,
        is_tutor_cancellation,
        is_tutor_no_show,
        is_customer_cancellation,
        is_customer_no_show,
        rating,
        is_first_session,
        created_at,
        updated_at,
        {{ run_ts() }} as computed_at
    from sessions
)

select * from final

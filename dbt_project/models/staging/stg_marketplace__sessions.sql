with source as (
    select * from {{ source('raw', 'sessions') }}
),

deduplicated as (
    -- raw.sessions is keyed on (id, created_at); one row per session id, newest version wins.
    select distinct on (id) *
    from source
    order by id, updated_at desc
),

renamed as (
    select
        id as session_id,
        customer_id,
        tutor_id,
        subject_id,
        session_request_id,
        scheduled_at,
        duration_minutes,
        status as session_status,
        cancelled_by,
        no_show_by,
        rating,
        is_first_session,
        created_at,
        updated_at
    from deduplicated
)

select * from renamed

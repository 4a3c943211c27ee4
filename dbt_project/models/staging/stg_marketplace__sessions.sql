with source as (
    select * from {{ source('raw', 'sessions') }}
),

deduplicated as (
    -- raw.sessions is keyed on (id, created_at): a source that rewrites created_at leaves two
    -- versions of one session. Keep the newest. Written as an anti-join rather than
    -- `distinct on (id)` so that filters on other columns (customer, tutor, updated_at) still
    -- reach the indexes of raw.sessions when a model selects only a few sessions.
    select source.*
    from source
    where not exists (
        select 1
        from {{ source('raw', 'sessions') }} as newer
        where
            newer.id = source.id
            and (newer.updated_at, newer.created_at) > (source.updated_at, source.created_at)
    )
),

renamed as (
    select
        id as session_id,
        customer_id,
        tutor_id,
        subject_id,
        session_request_id,
        scheduled_at,
        scheduled_at + make_interval(mins => duration_minutes) as ends_at,
        duration_minutes,
        status as session_status,
        cancelled_by,
        no_show_by,
        status = 'completed' as is_completed,
        status = 'cancelled' and cancelled_by = 'tutor' as is_tutor_cancellation,
        status = 'no_show' and no_show_by = 'tutor' as is_tutor_no_show,
        status = 'cancelled' and cancelled_by is distinct from 'tutor' as is_customer_cancellation,
        status = 'no_show' and no_show_by is distinct from 'tutor' as is_customer_no_show,
        rating,
        is_first_session,
        created_at,
        updated_at,
        _ingested_at
    from deduplicated
)

select * from renamed

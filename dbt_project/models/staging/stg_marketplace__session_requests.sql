with source as (
    select * from {{ source('raw', 'session_requests') }}
),

renamed as (
    select
        id as session_request_id,
        customer_id,
        subject_id,
        requested_start_at,
        status as request_status,
        tutoring_session_id as session_id,
        created_at,
        updated_at,
        _ingested_at
    from source
)

select * from renamed

with source as (
    select * from {{ source('raw', 'inbound_calls') }}
),

deduplicated as (
    select distinct on (id) *
    from source
    order by id, updated_at desc
),

renamed as (
    select
        id as call_id,
        customer_id,
        reason_code,
        channel,
        duration_seconds,
        resolved as is_resolved,
        called_at,
        created_at,
        updated_at
    from deduplicated
)

select * from renamed

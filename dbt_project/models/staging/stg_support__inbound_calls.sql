with source as (
    select * from {{ source('raw', 'inbound_calls') }}
),

deduplicated as (
    -- Keyed on (id, created_at) like raw.sessions: keep the newest version of each call.
    select source.*
    from source
    where not exists (
        select 1
        from {{ source('raw', 'inbound_calls') }} as newer
        where
            newer.id = source.id
            and (newer.updated_at, newer.created_at) > (source.updated_at, source.created_at)
    )
),

renamed as (
    select
        id as call_id,
        customer_id,
        reason_code,
        channel,
        duration_seconds,
        coalesce(resolved, false) as is_resolved,
        called_at,
        created_at,
        updated_at,
        _ingested_at
    from deduplicated
)

select * from renamed

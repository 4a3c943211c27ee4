with deduplicated as (
    -- keyed on (id, created_at) like raw.sessions: one row per call, its newest version
    {{ keep_newest_version(source('raw', 'inbound_calls')) }}
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

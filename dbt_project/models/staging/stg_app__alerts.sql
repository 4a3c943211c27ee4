with source as (
    select * from {{ source('app', 'alerts') }}
),

renamed as (
    select
        id as alert_id,
        rule as alert_rule,
        entity_type,
        entity_id,
        severity,
        status as alert_status,
        created_at,
        updated_at,
        resolved_at
    from source
)

select * from renamed

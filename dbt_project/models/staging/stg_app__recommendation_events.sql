with source as (
    select * from {{ source('app', 'recommendation_events') }}
),

renamed as (
    select
        id as recommendation_event_id,
        recommendation_id,
        from_status,
        to_status,
        actor,
        actor_type,
        at as event_at
    from source
)

select * from renamed

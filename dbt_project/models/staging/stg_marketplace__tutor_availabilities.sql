with source as (
    select * from {{ source('raw', 'tutor_availabilities') }}
),

renamed as (
    select
        id as availability_id,
        tutor_id,
        -- 0 = Monday .. 6 = Sunday, hours in UTC, end hour exclusive
        day_of_week,
        start_hour,
        end_hour,
        created_at,
        updated_at,
        _ingested_at
    from source
)

select * from renamed

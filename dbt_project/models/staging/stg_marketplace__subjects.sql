with source as (
    select * from {{ source('raw', 'subjects') }}
),

renamed as (
    select
        id as subject_id,
        name as subject_name,
        category as subject_category,
        created_at,
        updated_at,
        _ingested_at
    from source
)

select * from renamed

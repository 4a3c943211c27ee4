with source as (
    select * from {{ source('raw', 'tutor_subjects') }}
),

renamed as (
    select
        id as tutor_subject_id,
        tutor_id,
        subject_id,
        created_at,
        updated_at,
        _ingested_at
    from source
)

select * from renamed

with source as (
    select * from {{ source('raw', 'customers') }}
),

renamed as (
    select
        id as customer_id,
        status as customer_status,
        acquisition_channel,
        grade_level,
        goal,
        goal_progress_pct,
        coalesce(signed_up_at, created_at) as signed_up_at,
        deleted_at,
        deleted_at is not null as is_deleted,
        created_at,
        updated_at
    from source
)

select * from renamed

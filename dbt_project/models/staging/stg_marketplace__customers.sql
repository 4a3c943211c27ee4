{#- One select, no WITH: PostgreSQL never flattens a view that has a WITH clause into the
    query reading it, so a join through it cannot look rows up by index (macros/README.md). -#}
select
    id as customer_id,
    full_name,
    email,
    grade_level,
    goal,
    goal_progress_pct,
    acquisition_channel,
    status as customer_status,
    coalesce(signed_up_at, created_at) as signed_up_at,
    deleted_at,
    deleted_at is not null as is_deleted,
    status = 'active' and deleted_at is null as is_active,
    created_at,
    updated_at,
    _ingested_at
from {{ source('raw', 'customers') }}

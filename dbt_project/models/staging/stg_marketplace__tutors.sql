{#- One select, no WITH: PostgreSQL never flattens a view that has a WITH clause into the
    query reading it, so a join through it cannot look rows up by index (macros/README.md). -#}
select
    id as tutor_id,
    full_name,
    email,
    status as tutor_status,
    hourly_rate_cents,
    coalesce(hired_at, created_at) as hired_at,
    deleted_at,
    deleted_at is not null as is_deleted,
    status = 'active' and deleted_at is null as is_active,
    created_at,
    updated_at,
    _ingested_at
from {{ source('raw', 'tutors') }}

{#- One select, no WITH: PostgreSQL never flattens a view that has a WITH clause into the
    query reading it, so a join through it cannot look rows up by index (macros/README.md). -#}
select
    id as session_request_id,
    customer_id,
    subject_id,
    requested_start_at,
    status as request_status,
    tutoring_session_id as session_id,
    created_at,
    updated_at,
    _ingested_at
from {{ source('raw', 'session_requests') }}

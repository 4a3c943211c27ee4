{#- One select, no WITH: PostgreSQL never flattens a view that has a WITH clause into the
    query reading it, so a join through it cannot look rows up by index (macros/README.md). -#}
-- keyed on (id, created_at) like raw.sessions: one row per call, its newest version
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
from {{ source('raw', 'inbound_calls') }} as latest
where {{ newest_version_filter(source('raw', 'inbound_calls'), 'latest') }}

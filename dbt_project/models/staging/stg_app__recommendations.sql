{#- One select, no WITH: PostgreSQL never flattens a view that has a WITH clause into the
    query reading it, so a join through it cannot look rows up by index (macros/README.md). -#}
select
    id as recommendation_id,
    entity_type,
    entity_id,
    rec_type,
    reason_code,
    priority,
    owner_role,
    status as recommendation_status,
    source_alert_id,
    due_at,
    expires_at,
    snoozed_until,
    acted_by,
    acted_at,
    created_at,
    updated_at
from {{ source('app', 'recommendations') }}

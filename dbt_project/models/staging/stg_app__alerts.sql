{#- One select, no WITH: PostgreSQL never flattens a view that has a WITH clause into the
    query reading it, so a join through it cannot look rows up by index (macros/README.md). -#}
select
    id as alert_id,
    rule as alert_rule,
    entity_type,
    entity_id,
    severity,
    status as alert_status,
    created_at,
    updated_at,
    resolved_at
from {{ source('app', 'alerts') }}

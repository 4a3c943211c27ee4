{#- One select, no WITH: PostgreSQL never flattens a view that has a WITH clause into the
    query reading it, so a join through it cannot look rows up by index (macros/README.md). -#}
select
    id as recommendation_event_id,
    recommendation_id,
    from_status,
    to_status,
    actor,
    actor_type,
    at as event_at
from {{ source('app', 'recommendation_events') }}

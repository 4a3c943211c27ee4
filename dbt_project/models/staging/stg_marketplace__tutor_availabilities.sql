{#- One select, no WITH: PostgreSQL never flattens a view that has a WITH clause into the
    query reading it, so a join through it cannot look rows up by index (macros/README.md). -#}
select
    id as availability_id,
    tutor_id,
    -- 0 = Monday .. 6 = Sunday, hours in UTC, end hour exclusive
    day_of_week,
    start_hour,
    end_hour,
    created_at,
    updated_at,
    _ingested_at
from {{ source('raw', 'tutor_availabilities') }}

{#- One select, no WITH: PostgreSQL never flattens a view that has a WITH clause into the
    query reading it, so a join through it cannot look rows up by index (macros/README.md). -#}
select
    id as subject_id,
    name as subject_name,
    category as subject_category,
    created_at,
    updated_at,
    _ingested_at
from {{ source('raw', 'subjects') }}

{#- One select, no WITH: PostgreSQL never flattens a view that has a WITH clause into the
    query reading it, so a join through it cannot look rows up by index (macros/README.md). -#}
select
    id as tutor_subject_id,
    tutor_id,
    subject_id,
    created_at,
    updated_at,
    _ingested_at
from {{ source('raw', 'tutor_subjects') }}

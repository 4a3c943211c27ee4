{#- One select, no WITH: PostgreSQL never flattens a view that has a WITH clause into the
    query reading it, so a join through it cannot look rows up by index (macros/README.md). -#}
-- keyed on (id, created_at): one row per session, its newest version
select
    id as session_id,
    customer_id,
    tutor_id,
    subject_id,
    session_request_id,
    scheduled_at,
    scheduled_at + make_interval(mins => duration_minutes) as ends_at,
    duration_minutes,
    status as session_status,
    cancelled_by,
    no_show_by,
    status = 'completed' as is_completed,
    status = 'cancelled' and cancelled_by = 'tutor' as is_tutor_cancellation,
    status = 'no_show' and no_show_by = 'tutor' as is_tutor_no_show,
    (
        status = 'cancelled' and cancelled_by is distinct from 'tutor'
    ) as is_customer_cancellation,
    (status = 'no_show' and no_show_by is distinct from 'tutor') as is_customer_no_show,
    rating,
    is_first_session,
    created_at,
    updated_at,
    _ingested_at
from {{ source('raw', 'sessions') }} as latest
where {{ newest_version_filter(source('raw', 'sessions'), 'latest') }}

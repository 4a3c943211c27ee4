{#- One row per subject per hour (UTC) from the first request to the end of the supply
    horizon: the session requests asking for a start in that hour (demand). An incremental run
    recomputes the hours of the requests that arrived and adds the hours that entered the
    horizon. -#}
{%- set prev = previous_run() %}

with requests as not materialized (
    select
        *,
        date_trunc('hour', requested_start_at) as hour_at
    from {{ ref('stg_marketplace__session_requests') }}
),

hours as (
    -- never past the horizon: later hours are computed when they enter it
    select hour_at from (
        {%- if prev is none %}
        select generate_series(
            (select min(hour_at) from requests), {{ horizon_end_hour() }}, interval '1 hour'
        ) as hour_at
        {%- else %}
        select distinct hour_at
        from requests
        where {{ changed_since('requests', prev) }}
        union
        {{ new_horizon_hours() }}
        {%- endif %}
    ) as candidates
    where hour_at <= {{ horizon_end_hour() }}
),

scoped_requests as (
    select requests.*
    from requests
    where
        requests.requested_start_at >= (select min(hours.hour_at) from hours)
        and requests.requested_start_at < (select max(hours.hour_at) from hours) + interval '1 hour'
        and requests.hour_at in (select hours.hour_at from hours)
),

demand as (
    select
        subject_id,
        hour_at,
        count(*) filter (where request_status <> 'cancelled') as requested_sessions,
        count(*) filter (where request_status = 'matched') as filled_sessions,
        count(*) filter (where request_status = 'unfilled') as unfilled_requests,
        count(*) filter (where request_status = 'pending') as pending_requests,
        count(*) filter (where request_status = 'cancelled') as cancelled_requests
    from scoped_requests
    group by subject_id, hour_at
),

grid as (
    -- every subject, as in int_supply_hourly (int_subject_hours_available lists them all)
    select
        subjects.subject_id,
        hours.hour_at
    from hours
    cross join (
        select distinct subject_id from {{ ref('int_subject_hours_available') }}
    ) as subjects
),

final as (
    select
        grid.subject_id,
        grid.hour_at,
        coalesce(demand.requested_sessions, 0) as requested_sessions,
        coalesce(demand.filled_sessions, 0) as filled_sessions,
        coalesce(demand.unfilled_requests, 0) as unfilled_requests,
        coalesce(demand.pending_requests, 0) as pending_requests,
        coalesce(demand.cancelled_requests, 0) as cancelled_requests,
        {{ run_ts() }} as computed_at
    from grid
    left join demand
        on grid.subject_id = demand.subject_id
        and grid.hour_at = demand.hour_at
    where grid.hour_at is not null
)

select * from final

{{ config(pre_hook="set local enable_sort = off") }}
{#- One row per subject per hour (UTC), same hours as int_demand_hourly: tutor-hours available
    for the subject (active tutors teaching it and available in that weekly hour, from their
    current availability) and how much of that is already booked by the subject's sessions
    (not cancelled; at most the hours available). open_tutor_hours = available - booked, never
    negative. A tutor teaching several subjects counts in each; a session takes the hour from
    its own subject only, so such a tutor's hour booked in one subject still shows as open in
    the others (the exact split joins every booked hour to every subject of its tutor: ~3x the
    cost of this model at S10). The pre-hook keeps PostgreSQL on hash aggregation: it would
    sort the ~6M session-hours of a full build at S10 otherwise.

    An incremental run recomputes the hours touched by the sessions that arrived, adds the hours
    that entered the horizon, and recomputes the whole future when tutors, their subjects or
    availability changed (past hours keep the availability they were computed with). -#}
{%- set prev = previous_run() %}

with sessions as not materialized (
    select * from {{ ref('int_sessions_deduplicated') }}
    where session_status <> 'cancelled'
),

hours as (
    -- never past the horizon: later hours are computed when they enter it
    select hour_at from (
        {%- if prev is none %}
        select generate_series(
            (
                select date_trunc('hour', min(requested_start_at))
                from {{ ref('stg_marketplace__session_requests') }}
            ),
            {{ horizon_end_hour() }},
            interval '1 hour'
        ) as hour_at
        {%- else %}
        select generate_series(
            date_trunc('hour', changed.scheduled_at),
            changed.ends_at - interval '1 microsecond',
            interval '1 hour'
        ) as hour_at
        from {{ ref('int_sessions_deduplicated') }} as changed
        where changed.computed_at > '{{ prev.computed_at }}'::timestamptz
        union
        {{ new_horizon_hours() }}
        union
        -- availability or teaching changed: the whole outlook
        select generate_series(date_trunc('hour', {{ as_of() }}), {{ horizon_end_hour() }}, interval '1 hour')
        where exists (
            select 1 from {{ ref('int_subject_hours_available') }}
            where computed_at > '{{ prev.computed_at }}'::timestamptz
        )
        {%- endif %}
    ) as candidates
    where hour_at <= {{ horizon_end_hour() }}
),

hour_slots as (
    select
        hour_at,
        extract(isodow from hour_at at time zone 'UTC')::int - 1 as day_of_week,
        extract(hour from hour_at at time zone 'UTC')::int as hour_of_day
    from hours
),

slot_capacity as (
    select * from {{ ref('int_subject_hours_available') }}
),

booked as (
    -- tutor-hours taken in each subject and hour by its sessions (a session spans at most
    -- three clock hours: durations are up to 90 minutes and may start on the half hour)
    select
        subject_id,
        hour_at,
        sum(
            extract(epoch from
                least(ends_at, hour_at + interval '1 hour') - greatest(scheduled_at, hour_at)
            )
        ) / 3600.0 as booked_tutor_hours
    from (
        {%- for offset in range(3) %}
        select
            subject_id,
            scheduled_at,
            ends_at,
            date_trunc('hour', scheduled_at) + interval '{{ offset }} hours' as hour_at
        from sessions
        where
            ends_at > date_trunc('hour', scheduled_at) + interval '{{ offset }} hours'
            and scheduled_at >= (select min(hours.hour_at) from hours) - interval '2 hours'
            and scheduled_at < (select max(hours.hour_at) from hours) + interval '1 hour'
        {{ 'union all' if not loop.last }}
        {%- endfor %}
    ) as session_slices
    where hour_at in (select hours.hour_at from hours)
    group by subject_id, hour_at
),

grid as (
    -- every subject in every hour: int_subject_hours_available has each subject's 168 slots
    select
        slot_capacity.subject_id,
        hour_slots.hour_at,
        slot_capacity.available_tutors
    from hour_slots
    inner join slot_capacity
        on hour_slots.day_of_week = slot_capacity.day_of_week
        and hour_slots.hour_of_day = slot_capacity.hour_of_day
    where hour_slots.hour_at is not null
),

final as (
    select
        grid.subject_id,
        grid.hour_at,
        grid.available_tutors as available_tutor_hours,
        -- a tutor booked twice in one hour (a double booking in the source) still gives at
        -- most the hour they had
        round(least(coalesce(booked.booked_tutor_hours, 0), grid.available_tutors), 2)
            as booked_tutor_hours,
        round(greatest(grid.available_tutors - coalesce(booked.booked_tutor_hours, 0), 0), 2)
            as open_tutor_hours,
        {{ run_ts() }} as computed_at
    from grid
    left join booked
        on grid.subject_id = booked.subject_id
        and grid.hour_at = booked.hour_at
)

select * from final

{#- Compression on TimescaleDB: a tutor has at most one row a day, so tutor_id segments held
    at most 7 rows per 7-day chunk; old days are read per date range over all tutors (30-day
    windows, KPIs). So: no segments, rows ordered by day then tutor, 30-day chunks.
    The session_date index serves int_kpis_daily's few days per cycle (added after the first
    deployments, hence ensure_index rather than the timeseries indexes). -#}
{{
    config(
        materialized='incremental',
        unique_key=['tutor_id', 'session_date'],
        incremental_strategy='replace_keys',
        on_schema_change='append_new_columns',
        meta={
            'timeseries': {
                'time_column': 'session_date',
                'partition': 'month',
                'chunk': '30 days',
                'compress_after': '45 days',
                'segment_by': '',
                'order_by': 'session_date desc, tutor_id',
                'ahead': '1 month',
                'indexes': [
                    {'columns': ['tutor_id', 'session_date']},
                    {'columns': ['computed_at']},
                ],
            },
        },
        pre_hook=["{{ timeseries_prepare() }}", "set local enable_mergejoin = off"],
        post_hook=[
            "{{ timeseries_finalize() }}",
            "{{ ensure_index('session_date') }}",
        ],
    )
}}
{#- Per tutor and day: what happened to the sessions scheduled that day, with the follow-up
    outcomes (did the customer book again after a first session, did they rebook the tutor).

    Scope of an incremental run: the (tutor, day) of every session that arrived, the days of the
    same customers' earlier sessions whose follow-up a new booking decides, and - on a new
    reference date - the days whose follow-up window closed since (pending turns into failed).
    A day that lost all its sessions keeps a row of zeros, so the mart downstream sees it. -#}
{%- set prev = previous_run() %}
{%- set first_days = var('first_session_success_days') %}
{%- set rebook_days = var('rebooking_days') %}
{%- set follow_days = [first_days, rebook_days] | max %}
{%- set reference_day_start = utc_day_start(as_of_date()) %}

with sessions as not materialized (
    select * from {{ ref('int_sessions_deduplicated') }}
),

{% if prev is not none -%}
changed as (
    select *
    from sessions
    where computed_at > '{{ prev.computed_at }}'::timestamptz
),

scope as (
    select
        tutor_id,
        session_date
    from changed
    union
    select
        earlier.tutor_id,
        earlier.session_date
    from changed
    inner join sessions as earlier
        on changed.customer_id = earlier.customer_id
        and earlier.scheduled_at
        >= least(changed.created_at, changed.scheduled_at) - interval '{{ follow_days }} days'
        and earlier.scheduled_at < greatest(changed.created_at, changed.scheduled_at)
    {%- if prev.new_day %}
    union
    select
        tutor_id,
        session_date
    from {{ this }}
    where
        session_date >= '{{ prev.as_of_date }}'::date - {{ follow_days + 1 }}
        and session_date <= {{ as_of_date() }} - {{ [first_days, rebook_days] | min }}
    {%- endif %}
),

customer_sessions as (
    -- every session of the customers with a session in scope: follow-ups look at later ones
    select sessions.*
    from sessions
    where sessions.customer_id in (
        select in_scope.customer_id
        from sessions as in_scope
        inner join scope
            on in_scope.tutor_id = scope.tutor_id
            and in_scope.scheduled_at >= {{ utc_day_start('scope.session_date') }}
            and in_scope.scheduled_at < {{ utc_day_start('scope.session_date + 1') }}
    )
),
{%- else %}
customer_sessions as not materialized (
    -- every session, read where it is used: materialized, the 5.6 M rows of S10 were copied
    -- into a work table and read back three times (13 of the full build's 50 s)
    select * from sessions
),
{%- endif %}

first_session_followups as (
    -- a first session succeeds when the customer books again within the window after it
    select distinct first_sessions.session_id
    from customer_sessions as first_sessions
    inner join customer_sessions as later
        on first_sessions.customer_id = later.customer_id
        and later.created_at > first_sessions.scheduled_at
        and later.created_at <= first_sessions.scheduled_at + interval '{{ first_days }} days'
    where first_sessions.is_first_session
),

outcomes as (
    select
        customer_sessions.tutor_id,
        customer_sessions.session_date,
        customer_sessions.session_status,
        customer_sessions.is_completed,
        customer_sessions.is_tutor_no_show,
        customer_sessions.is_customer_no_show,
        customer_sessions.is_tutor_cancellation,
        customer_sessions.is_customer_cancellation,
        customer_sessions.rating,
        customer_sessions.duration_minutes,
        customer_sessions.is_first_session
        and (
            customer_sessions.is_completed
            or customer_sessions.is_tutor_no_show
            or customer_sessions.is_tutor_cancellation
        ) as is_judged_first_session,
        -- the follow-up windows, closed once they ended before the reference date began
        customer_sessions.scheduled_at + interval '{{ first_days }} days'
        < {{ reference_day_start }} as is_first_window_closed,
        customer_sessions.scheduled_at + interval '{{ rebook_days }} days'
        < {{ reference_day_start }} as is_rebook_window_closed,
        first_session_followups.session_id is not null as has_booked_again,
        -- another session with the same tutor, not cancelled, within the rebooking window
        count(*) filter (where customer_sessions.session_status <> 'cancelled') over (
            partition by customer_sessions.customer_id, customer_sessions.tutor_id
            order by customer_sessions.scheduled_at
            range between interval '1 microsecond' following
            and interval '{{ rebook_days }} days' following
        ) > 0 as is_rebooked
    from customer_sessions
    left join first_session_followups
        on customer_sessions.session_id = first_session_followups.session_id
),

{% if prev is not none -%}
scoped_outcomes as (
    select outcomes.*
    from outcomes
    inner join scope
        on outcomes.tutor_id = scope.tutor_id
        and outcomes.session_date = scope.session_date
),
{%- else %}
scoped_outcomes as (
    select * from outcomes
),
{%- endif %}

daily as (
    select
        tutor_id,
        session_date,
        count(*) as sessions_scheduled,
        count(*) filter (where session_status <> 'scheduled') as sessions_resolved,
        count(*) filter (where is_completed) as sessions_completed,
        count(*) filter (where is_tutor_no_show) as tutor_no_shows,
        count(*) filter (where is_customer_no_show) as customer_no_shows,
        count(*) filter (where is_tutor_cancellation) as tutor_cancellations,
        count(*) filter (where is_customer_cancellation) as customer_cancellations,
        count(rating) as ratings,
        coalesce(sum(rating), 0) as rating_points,
        coalesce(sum(duration_minutes) filter (where is_completed), 0) as completed_minutes,
        count(*) filter (where is_judged_first_session) as first_sessions,
        -- success: held, and the customer booked again; a tutor no-show or cancellation on a
        -- first session fails it at once
        count(*) filter (
            where is_judged_first_session and is_completed and has_booked_again
        ) as first_sessions_succeeded,
        count(*) filter (
            where is_judged_first_session
            and (not is_completed or (not has_booked_again and is_first_window_closed))
        ) as first_sessions_failed,
        count(*) filter (where is_completed and is_rebooked) as sessions_rebooked,
        count(*) filter (
            where is_completed and not is_rebooked and is_rebook_window_closed
        ) as sessions_not_rebooked
    from scoped_outcomes
    group by tutor_id, session_date
),

final as (
    select
        {%- if prev is not none %}
        scope.tutor_id,
        scope.session_date,
        {%- else %}
        daily.tutor_id,
        daily.session_date,
        {%- endif %}
        {%- for column in var('tutor_daily_counts') %}
        coalesce(daily.{{ column }}, 0) as {{ column }},
        {%- endfor %}
        {{ as_of_date() }} as as_of_date,
        {{ run_ts() }} as computed_at
    {%- if prev is not none %}
    from scope
    left join daily
        on scope.tutor_id = daily.tutor_id
        and scope.session_date = daily.session_date
    {%- else %}
    from daily
    {%- endif %}
)

select * from final

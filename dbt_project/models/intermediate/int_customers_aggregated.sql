{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='replace_keys',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['customer_id']},
            {'columns': ['computed_at']},
        ],
    )
}}
{#- Scope: every customer on a full build and on the first run of a new reference date (their
    windows moved); otherwise the customers with rows ingested since the previous run, read
    here first and written into the query as a list. With a subquery instead, PostgreSQL
    guesses a handful of customers (its statistics predate the new rows) and joins the
    aggregates below by nested loops that recompute or rescan them for every customer: the
    first cycle after a cold build at S10 (1,711 customers) took 257 s. With the list it
    knows how many there are. Past `customer_scope_max` (a catch-up after an outage) every
    customer is recomputed, which scales with the customers rather than quadratically. -#}
{%- set prev = previous_run() %}
{%- set everyone = prev is none or prev.new_day %}
{%- set scope_ids = [] %}
{%- if not everyone and execute %}
    {%- set scope_sql %}
    select changed.customer_id
    from {{ ref('stg_marketplace__customers') }} as changed
    where {{ changed_since('changed', prev) }}
    union
    select changed.customer_id
    from {{ ref('int_sessions_deduplicated') }} as changed
    where changed.computed_at > '{{ prev.computed_at }}'::timestamptz
    union
    select changed.customer_id
    from {{ ref('stg_support__inbound_calls') }} as changed
    where {{ changed_since('changed', prev) }}
    {%- endset %}
    {%- set scope_ids = run_query(scope_sql).columns[0].values() | map('int') | list %}
    {%- if scope_ids | length > var('customer_scope_max') %}
        {%- set everyone = true %}
    {%- endif %}
{%- endif %}
{%- set window_end_current = utc_day_start(as_of_date() ~ ' + 1') %}
{%- set window_end_week_ago = utc_day_start(as_of_date() ~ ' - 6') %}

with

customers as not materialized (
    select *
    from {{ ref('stg_marketplace__customers') }}
    {%- if not everyone %}
    where customer_id in ({{ scope_ids | join(', ') if scope_ids else 'null' }})
    {%- endif %}
),

reference_dates as (
    -- Features are computed as of the reference date and as of a week earlier (for the score's
    -- 7-day change). Windows cover whole UTC days up to the end of the reference date. Their
    -- starts are computed here, once: written as `window_end - interval ...` in the filters,
    -- they were computed for each of the millions of session rows (5 s of a full build at S10).
    select
        reference_date,
        is_current,
        window_end,
        window_end - interval '1 day' as window_start_1d,
        window_end - interval '30 days' as window_start_30d,
        window_end - interval '60 days' as window_start_60d,
        window_end - interval '90 days' as window_start_90d
    from (
        select
            reference_date,
            reference_date = {{ as_of_date() }} as is_current,
            {{ utc_day_start('reference_date + 1') }} as window_end
        from (values ({{ as_of_date() }}), ({{ as_of_date() }} - 7)) as dates (reference_date)
    ) as bounds
),

sessions as not materialized (
    select sessions.*
    from {{ ref('int_sessions_deduplicated') }} as sessions
    inner join customers on sessions.customer_id = customers.customer_id
    where customers.is_active
),

calls as (
    select calls.*
    from {{ ref('stg_support__inbound_calls') }} as calls
    inner join customers on calls.customer_id = customers.customer_id
    where customers.is_active
),

session_windows as (
    select
        sessions.customer_id,
        dates.reference_date,
        count(*) filter (
            where sessions.is_completed
            and sessions.scheduled_at >= dates.window_start_30d
            and sessions.scheduled_at < dates.window_end
        ) as completed_sessions_30d,
        count(*) filter (
            where sessions.is_completed
            and sessions.scheduled_at >= dates.window_start_60d
            and sessions.scheduled_at < dates.window_start_30d
        ) as completed_sessions_prev_30d,
        count(sessions.rating) filter (
            where sessions.scheduled_at >= dates.window_start_30d
            and sessions.scheduled_at < dates.window_end
        ) as rated_sessions_30d,
        avg(sessions.rating) filter (
            where sessions.scheduled_at >= dates.window_start_30d
            and sessions.scheduled_at < dates.window_end
        ) as avg_rating_30d,
        count(*) filter (
            where (sessions.is_customer_cancellation or sessions.is_customer_no_show)
            and sessions.scheduled_at >= dates.window_start_30d
            and sessions.scheduled_at < dates.window_end
        ) as customer_cancellations_30d,
        count(*) filter (
            where (sessions.is_tutor_cancellation or sessions.is_tutor_no_show)
            and sessions.scheduled_at >= dates.window_start_30d
            and sessions.scheduled_at < dates.window_end
        ) as tutor_failures_30d,
        count(*) filter (where sessions.is_completed) as completed_sessions_90d,
        -- booked by the end of the reference date for that day or later, not cancelled by then
        count(*) filter (
            where sessions.scheduled_at >= dates.window_start_1d
            and sessions.created_at < dates.window_end
            and not (
                sessions.session_status = 'cancelled' and sessions.updated_at < dates.window_end
            )
        ) as sessions_booked_ahead
    from sessions
    inner join reference_dates as dates
        on sessions.scheduled_at >= dates.window_start_90d
    group by sessions.customer_id, dates.reference_date
),

last_sessions as (
    select
        customer_id,
        max(scheduled_at) filter (
            where scheduled_at < {{ window_end_current }}
        ) as last_completed_at_current,
        max(scheduled_at) filter (
            where scheduled_at < {{ window_end_week_ago }}
        ) as last_completed_at_week_ago
    from sessions
    where is_completed
    group by customer_id
),

completed_sequence as (
    -- Consecutive completed sessions in the same subject: a change of tutor is a switch.
    select
        sessions.customer_id,
        dates.reference_date,
        sessions.tutor_id,
        lag(sessions.tutor_id) over (
            partition by sessions.customer_id, dates.reference_date, sessions.subject_id
            order by sessions.scheduled_at, sessions.session_id
        ) as previous_tutor_id
    from sessions
    inner join reference_dates as dates
        on sessions.scheduled_at >= dates.window_start_90d
        and sessions.scheduled_at < dates.window_end
    where sessions.is_completed
),

tutor_changes as (
    select
        customer_id,
        reference_date,
        count(distinct tutor_id) as distinct_tutors_90d,
        count(*) filter (where previous_tutor_id <> tutor_id) as tutor_switches_90d
    from completed_sequence
    group by customer_id, reference_date
),

call_windows as (
    select
        calls.customer_id,
        dates.reference_date,
        count(*) as inbound_calls_30d,
        count(*) filter (
            where calls.reason_code = 'cancellation_request'
        ) as cancellation_requests_30d
    from calls
    inner join reference_dates as dates
        on calls.called_at >= dates.window_start_30d
        and calls.called_at < dates.window_end
    group by calls.customer_id, dates.reference_date
),

final as (
    select
        customers.customer_id,
        dates.reference_date,
        dates.is_current,
        customers.is_active,
        customers.customer_status,
        customers.acquisition_channel,
        customers.goal,
        customers.goal_progress_pct,
        customers.signed_up_at,
        dates.reference_date - (customers.signed_up_at at time zone 'UTC')::date as tenure_days,
        (
            case
                when dates.is_current then last_sessions.last_completed_at_current
                else last_sessions.last_completed_at_week_ago
            end at time zone 'UTC'
        )::date as last_session_date,
        dates.reference_date - (
            coalesce(
                case
                    when dates.is_current then last_sessions.last_completed_at_current
                    else last_sessions.last_completed_at_week_ago
                end,
                customers.signed_up_at
            ) at time zone 'UTC'
        )::date as days_since_last_session,
        coalesce(session_windows.completed_sessions_30d, 0) as completed_sessions_30d,
        coalesce(session_windows.completed_sessions_prev_30d, 0) as completed_sessions_prev_30d,
        coalesce(session_windows.completed_sessions_90d, 0) as completed_sessions_90d,
        coalesce(session_windows.rated_sessions_30d, 0) as rated_sessions_30d,
        round(session_windows.avg_rating_30d, 2) as avg_rating_30d,
        coalesce(session_windows.customer_cancellations_30d, 0) as customer_cancellations_30d,
        coalesce(session_windows.tutor_failures_30d, 0) as tutor_failures_30d,
        coalesce(session_windows.sessions_booked_ahead, 0) as sessions_booked_ahead,
        coalesce(tutor_changes.distinct_tutors_90d, 0) as distinct_tutors_90d,
        coalesce(tutor_changes.tutor_switches_90d, 0) as tutor_switches_90d,
        coalesce(call_windows.inbound_calls_30d, 0) as inbound_calls_30d,
        coalesce(call_windows.cancellation_requests_30d, 0) as cancellation_requests_30d,
        {{ as_of_date() }} as as_of_date,
        {{ run_ts() }} as computed_at
    from customers
    cross join reference_dates as dates
    left join last_sessions
        on customers.customer_id = last_sessions.customer_id
    left join session_windows
        on customers.customer_id = session_windows.customer_id
        and dates.reference_date = session_windows.reference_date
    left join tutor_changes
        on customers.customer_id = tutor_changes.customer_id
        and dates.reference_date = tutor_changes.reference_date
    left join call_windows
        on customers.customer_id = call_windows.customer_id
        and dates.reference_date = call_windows.reference_date
    where
        customers.signed_up_at < dates.window_end
        -- a customer who left keeps one row (current) so that downstream marts drop them
        and (customers.is_active or dates.is_current)
)

select * from final

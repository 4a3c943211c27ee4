-- One row per customer: activity, satisfaction and support signals as of the reference time.
with sessions as (
    select * from {{ ref('stg_marketplace__sessions') }}
    where scheduled_at <= {{ as_of() }}
),

calls as (
    select * from {{ ref('stg_support__inbound_calls') }}
    where called_at <= {{ as_of() }}
),

session_stats as (
    select
        customer_id,
        max(scheduled_at) filter (where session_status = 'completed') as last_session_at,
        count(*) filter (
            where session_status = 'completed'
            and scheduled_at > {{ as_of() }} - interval '30 days'
        ) as sessions_30d,
        avg(rating) filter (
            where rating is not null and scheduled_at > {{ as_of() }} - interval '30 days'
        ) as avg_rating_30d,
        count(distinct tutor_id) filter (
            where session_status = 'completed'
            and scheduled_at > {{ as_of() }} - interval '90 days'
        ) as distinct_tutors_90d,
        count(*) as sessions_total
    from sessions
    group by customer_id
),

call_stats as (
    select
        customer_id,
        count(*) filter (
            where called_at > {{ as_of() }} - interval '30 days'
        ) as inbound_calls_30d
    from calls
    group by customer_id
)

select
    customers.customer_id,
    customers.customer_status,
    customers.is_deleted,
    customers.acquisition_channel,
    customers.goal_progress_pct,
    customers.signed_up_at,
    session_stats.last_session_at,
    coalesce(session_stats.sessions_30d, 0) as sessions_30d,
    session_stats.avg_rating_30d,
    coalesce(session_stats.distinct_tutors_90d, 0) as distinct_tutors_90d,
    coalesce(session_stats.sessions_total, 0) as sessions_total,
    coalesce(call_stats.inbound_calls_30d, 0) as inbound_calls_30d,
    extract(epoch from {{ as_of() }} - customers.signed_up_at) / 86400.0 as tenure_days,
    extract(
        epoch from {{ as_of() }} - coalesce(session_stats.last_session_at, customers.signed_up_at)
    ) / 86400.0 as days_since_last_session
from {{ ref('stg_marketplace__customers') }} as customers
left join session_stats on customers.customer_id = session_stats.customer_id
left join call_stats on customers.customer_id = call_stats.customer_id

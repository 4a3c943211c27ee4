{#- One row per week x recommendation type x outcome (accepted / dismissed) of customer
    recommendations: how many of the customers a person decided on booked again - a new session
    request or session - within 14 days after the decision. Only decisions whose 14 days have
    passed by the reference time count toward the share; younger ones are counted as pending. -#}
{%- set window = "interval '14 days'" %}

with recommendations as (
    select * from {{ ref('stg_app__recommendations') }}
    where entity_type = 'customer'
),

decisions as (
    -- a person's accept or dismiss (both are final, so one per recommendation)
    select
        recommendation_id,
        to_status as outcome,
        min(event_at) as decided_at
    from {{ ref('stg_app__recommendation_events') }}
    where
        to_status in ('accepted', 'dismissed')
        and actor_type = 'user'
    group by recommendation_id, to_status
),

decided as (
    -- a customer counts once per week, type and outcome, from their first decision in it
    select
        recommendations.rec_type,
        decisions.outcome,
        recommendations.entity_id as customer_id,
        date_trunc('week', decisions.decided_at at time zone 'UTC')::date as week_start_date,
        min(decisions.decided_at) as decided_at
    from decisions
    inner join recommendations
        on decisions.recommendation_id = recommendations.recommendation_id
    group by
        recommendations.rec_type,
        decisions.outcome,
        recommendations.entity_id,
        date_trunc('week', decisions.decided_at at time zone 'UTC')::date
),

decided_customers as (
    select
        customer_id,
        min(decided_at) as first_decided_at
    from decided
    group by customer_id
),

bookings as (
    -- only the decided customers' bookings after their first decision: the scans start at
    -- the oldest decision (created_at index) and join on the few customers, not all history
    select
        requests.customer_id,
        requests.created_at as booked_at
    from {{ ref('stg_marketplace__session_requests') }} as requests
    inner join decided_customers
        on requests.customer_id = decided_customers.customer_id
        and requests.created_at > decided_customers.first_decided_at
    where
        requests.created_at > (
            select min(oldest.first_decided_at) from decided_customers as oldest
        )
    union all
    select
        sessions.customer_id,
        sessions.created_at as booked_at
    from {{ ref('int_sessions_deduplicated') }} as sessions
    inner join decided_customers
        on sessions.customer_id = decided_customers.customer_id
        and sessions.created_at > decided_customers.first_decided_at
),

rebooked as (
    select distinct
        decided.week_start_date,
        decided.rec_type,
        decided.outcome,
        decided.customer_id
    from decided
    inner join bookings
        on decided.customer_id = bookings.customer_id
        and bookings.booked_at > decided.decided_at
        and bookings.booked_at <= decided.decided_at + {{ window }}
),

judged as (
    select
        decided.*,
        decided.decided_at + {{ window }} <= {{ as_of() }} as is_window_closed,
        rebooked.customer_id is not null as has_booked_again
    from decided
    left join rebooked
        on decided.week_start_date = rebooked.week_start_date
        and decided.rec_type = rebooked.rec_type
        and decided.outcome = rebooked.outcome
        and decided.customer_id = rebooked.customer_id
),

counted as (
    select
        week_start_date,
        rec_type,
        outcome,
        count(*) as customers,
        count(*) filter (where is_window_closed) as customers_measured,
        count(*) filter (where is_window_closed and has_booked_again) as customers_rebooked,
        count(*) filter (where not is_window_closed) as customers_pending
    from judged
    group by week_start_date, rec_type, outcome
),

final as (
    select
        week_start_date,
        rec_type,
        outcome,
        customers,
        customers_measured,
        customers_rebooked,
        customers_pending,
        round(customers_rebooked::numeric / nullif(customers_measured, 0), 4) as rebooked_share,
        {{ run_ts() }} as computed_at
    from counted
)

select * from final

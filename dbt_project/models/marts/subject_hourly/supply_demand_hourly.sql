{#- One row per subject per hour (UTC), from the first request to `supply_horizon_days` ahead:
    demand (requested sessions), how much was filled, supply (available and open tutor-hours)
    and the gap. Hours after now are the outlook: their supply comes from availability and
    their demand is what has been requested so far. -#}
{%- set prev = previous_run() %}

with demand as not materialized (
    select * from {{ ref('int_demand_hourly') }}
),

supply as not materialized (
    select * from {{ ref('int_supply_hourly') }}
),

{% if prev is not none -%}
changed as (
    select subject_id, hour_at from demand where computed_at > '{{ prev.computed_at }}'::timestamptz
    union
    select subject_id, hour_at from supply where computed_at > '{{ prev.computed_at }}'::timestamptz
),
{%- else %}
changed as (
    select
        subject_id,
        hour_at
    from demand
),
{%- endif %}

subjects as (
    select * from {{ ref('stg_marketplace__subjects') }}
),

final as (
    select
        changed.subject_id,
        changed.hour_at,
        subjects.subject_name,
        subjects.subject_category,
        coalesce(demand.requested_sessions, 0) as requested_sessions,
        coalesce(demand.filled_sessions, 0) as filled_sessions,
        coalesce(demand.unfilled_requests, 0) as unfilled_requests,
        coalesce(demand.pending_requests, 0) as pending_requests,
        round(
            coalesce(demand.filled_sessions, 0)::numeric / nullif(demand.requested_sessions, 0), 4
        ) as fill_rate,
        coalesce(supply.available_tutor_hours, 0) as available_tutor_hours,
        coalesce(supply.booked_tutor_hours, 0) as booked_tutor_hours,
        coalesce(supply.open_tutor_hours, 0) as open_tutor_hours,
        -- positive: more sessions requested than tutor-hours available for the subject
        coalesce(demand.requested_sessions, 0) - coalesce(supply.available_tutor_hours, 0)
            as supply_gap,
        {{ run_ts() }} as computed_at
    from changed
    left join demand
        on changed.subject_id = demand.subject_id
        and changed.hour_at = demand.hour_at
    left join supply
        on changed.subject_id = supply.subject_id
        and changed.hour_at = supply.hour_at
    left join subjects on changed.subject_id = subjects.subject_id
)

select * from final

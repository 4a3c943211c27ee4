{{ config(materialized='view') }}
{#- One row per subject per hour over the next 7 days (from the current hour): forecast
    demand with its 95% band against planned supply (tutor-hours available), and the gaps.
    A view, so "the next 7 days" always starts now. -#}

with forecasts as (
    select * from {{ ref('stg_ml__demand_forecasts') }}
    where
        hour_at >= date_trunc('hour', now())
        and hour_at < date_trunc('hour', now()) + interval '7 days'
),

supply as (
    -- the same 7 days: as a join condition only, the planner hashed every hour of history
    -- (188k rows, 355 ms at a million customers) to match 7k forecast hours
    select * from {{ ref('supply_demand_hourly') }}
    where
        hour_at >= date_trunc('hour', now())
        and hour_at < date_trunc('hour', now()) + interval '7 days'
),

subjects as (
    select * from {{ ref('stg_marketplace__subjects') }}
),

final as (
    select
        forecasts.subject_id,
        forecasts.hour_at,
        subjects.subject_name,
        subjects.subject_category,
        extract(epoch from forecasts.hour_at - date_trunc('hour', now()))::int / 3600
            as hours_ahead,
        forecasts.forecast_requested_sessions,
        forecasts.forecast_lower_95,
        forecasts.forecast_upper_95,
        coalesce(supply.requested_sessions, 0) as requested_sessions_so_far,
        coalesce(supply.available_tutor_hours, 0) as available_tutor_hours,
        coalesce(supply.open_tutor_hours, 0) as open_tutor_hours,
        -- positive: more sessions expected than tutor-hours available for the subject
        forecasts.forecast_requested_sessions - coalesce(supply.available_tutor_hours, 0)
            as forecast_supply_gap,
        forecasts.forecast_upper_95 - coalesce(supply.available_tutor_hours, 0)
            as upper_supply_gap,
        forecasts.forecast_requested_sessions > coalesce(supply.available_tutor_hours, 0)
            as is_gap_expected,
        forecasts.forecast_upper_95 > coalesce(supply.available_tutor_hours, 0)
            as is_gap_possible,
        forecasts.forecast_model,
        forecasts.is_fallback_forecast,
        forecasts.forecast_run_id
    from forecasts
    left join supply
        on forecasts.subject_id = supply.subject_id
        and forecasts.hour_at = supply.hour_at
    left join subjects on forecasts.subject_id = subjects.subject_id
)

select * from final

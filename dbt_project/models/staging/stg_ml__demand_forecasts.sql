with source as (
    select * from {{ source('ml', 'demand_forecasts') }}
),

deduplicated as (
    select distinct on (subject_id, hour_at) *
    from source
    order by subject_id asc, hour_at asc, created_at desc, run_id desc
),

renamed as (
    select
        subject_id,
        hour_at,
        yhat as forecast_requested_sessions,
        yhat_lower as forecast_lower_95,
        yhat_upper as forecast_upper_95,
        model as forecast_model,
        is_fallback as is_fallback_forecast,
        run_id as forecast_run_id,
        created_at as forecast_created_at
    from deduplicated
)

select * from renamed

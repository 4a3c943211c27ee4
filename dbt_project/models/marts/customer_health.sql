{%- set keep_rows = 'risk_score is not null' %}
{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='replace_keys',
        on_schema_change='append_new_columns',
        meta={'insert_filter': keep_rows},
        post_hook=[
            "{{ ensure_index('acquisition_channel') }}",
            "{{ ensure_index('risk_tier') }}",
        ],
        indexes=[
            {'columns': ['computed_at']},
            {'columns': ['risk_score']},
        ],
    )
}}
{#- Rescores the customers whose features were recomputed since this model's previous run
    (all of them on a new reference date). Customers who are no longer active come through
    with a null score and are removed (see meta.insert_filter). The acquisition_channel index
    serves the app's channel list (a loose index scan instead of a scan of every row); the
    risk_tier index lets the overview's counts by tier read a 3 MB index instead of the table
    (55 ms instead of 185 ms at a million customers). -#}
{%- set prev = previous_run() %}
{%- set components = [
    'recency', 'frequency', 'rating', 'support_calls', 'goal_progress', 'tutor_switching', 'tenure'
] %}
{%- set weights = var('risk_weights') %}
{%- set weights_new = var('risk_weights_new') %}
{%- set tiers = var('risk_tiers') %}

with features as (
    select *
    from {{ ref('int_customers_aggregated') }}
    {%- if prev is not none %}
    where computed_at > '{{ prev.computed_at }}'::timestamptz
    {%- endif %}
),

risks as not materialized (
    -- Each component is a risk in [0, 1]; null means "no data" and the component is left out.
    -- Each level is a subquery fenced with `offset 0` (`limit all` only because sqlfluff cannot
    -- parse a bare `offset 0`), so every value is computed once per row and read by the next
    -- level. Plain projections, not lateral subqueries: their nested loops and memoize nodes
    -- cost 10 of the 23 s a full build spent on a million customers.
    select
        risked.*,
        {%- for c in components %}
        case
            when risked.{{ c }}_risk is null then 0
            when risked.is_new_customer then {{ weights_new[c] }}
            else {{ weights[c] }}
        end::float8 as {{ c }}_raw_weight,
        {%- endfor %}
        {%- for c in components %}
        case
            when risked.{{ c }}_risk is null then 0
            when risked.is_new_customer then {{ weights_new[c] }}
            else {{ weights[c] }}
        end{{ ' +' if not loop.last else '::float8 as present_weight' }}
        {%- endfor %}
    from (
        select
            profiled.*,
            -- days since the last completed session, 3 days = none, 28 = full; halved while a
            -- session is booked for the reference date or later
            least(greatest((profiled.days_since_last_session - 3) / 25.0::float8, 0), 1)
            * case when profiled.sessions_booked_ahead > 0 then 0.5 else 1 end as recency_risk,
            -- completed sessions in the last 30 days against the 30 days before (at least 2)
            1 - least(
                profiled.completed_sessions_30d
                / greatest(profiled.completed_sessions_prev_30d, 2)::float8,
                1
            ) as frequency_risk,
            case
                when profiled.rated_sessions_30d > 0
                    then least(greatest((4.5 - profiled.avg_rating_30d::float8) / 2.0, 0), 1)
            end as rating_risk,
            least(profiled.inbound_calls_30d / 2.0::float8, 1) as support_calls_risk,
            case
                when profiled.goal_progress_pct is not null
                    then 1 - profiled.goal_progress_pct / 100.0::float8
            end as goal_progress_risk,
            -- switching tutors within a subject; a second subject's tutor is not a switch
            case
                when profiled.completed_sessions_90d > 1
                    then least(
                        2.0 * profiled.tutor_switches_90d
                        / greatest(profiled.completed_sessions_90d - 1, 1)::float8,
                        1
                    )
            end as tutor_switching_risk,
            greatest(1 - profiled.tenure_days / 180.0::float8, 0) as tenure_risk
        from (
            select
                features.*,
                features.tenure_days < {{ var('new_customer_days') }} as is_new_customer
            from features
            limit all offset 0
        ) as profiled
        limit all offset 0
    ) as risked
),

scored as not materialized (
    -- Weights of the components present are scaled to sum to 100; a component's points are its
    -- risk times its scaled weight, and the points add up to the score.
    select
        pointed.*,
        round((
            {%- for c in components %}
            pointed.{{ c }}_points{{ ' +' if not loop.last }}
            {%- endfor %}
        )::numeric, 1) as base_risk_score,
        case
            when not pointed.is_new_customer
                and pointed.days_since_last_session >= {{ var('risk_force_inactive_days') }}
                and pointed.sessions_booked_ahead = 0
                then 'no session in {{ var("risk_force_inactive_days") }} days and none booked'
            when pointed.cancellation_requests_30d > 0 then 'asked support to cancel'
        end as risk_forced_reason
    from (
        select
            risks.*,
            {%- for c in components %}
            100 * risks.{{ c }}_raw_weight / risks.present_weight as {{ c }}_weight,
            100 * coalesce(risks.{{ c }}_risk, 0) * risks.{{ c }}_raw_weight / risks.present_weight
                as {{ c }}_points{{ ',' if not loop.last }}
            {%- endfor %}
        from risks
        limit all offset 0
    ) as pointed
),

tiered as not materialized (
    select
        *,
        case
            when not is_active then null
            when risk_forced_reason is not null then greatest(base_risk_score, {{ tiers.high }})
            else base_risk_score
        end as risk_score
    from scored
),

labelled as not materialized (
    select
        *,
        case
            when risk_score is null then null
            when risk_score >= {{ tiers.critical }} then 'critical'
            when risk_score >= {{ tiers.high }} then 'high'
            when risk_score >= {{ tiers.medium }} then 'medium'
            else 'low'
        end as risk_tier,
        (
            array[
                {%- for c in components %}
                '{{ c }}'{{ ',' if not loop.last }}
                {%- endfor %}
            ]
        )[
            array_position(
                array[
                    {%- for c in components %}
                    {{ c }}_points{{ ',' if not loop.last }}
                    {%- endfor %}
                ],
                greatest(
                    {%- for c in components %}
                    {{ c }}_points{{ ',' if not loop.last }}
                    {%- endfor %}
                )
            )
        ] as top_risk_component
    from tiered
),

with_week_ago as (
    -- one pass, no join: the planner's estimates for freshly written rows are unreliable
    select
        *,
        max(case when not is_current then risk_score end) over by_customer as risk_score_7d_ago,
        max(case when not is_current then risk_tier end) over by_customer as risk_tier_7d_ago
    from labelled
    window by_customer as (partition by customer_id)
),

final as (
    -- every customer in scope; those no longer active get no score and are removed
    select
        customer_id,
        risk_score,
        risk_tier,
        base_risk_score,
        risk_forced_reason,
        top_risk_component,
        risk_score_7d_ago,
        risk_tier_7d_ago,
        risk_score - risk_score_7d_ago as risk_score_change_7d,
        case when is_new_customer then 'new' else 'established' end as scoring_profile,
        {%- for c in components %}
        round({{ c }}_risk::numeric, 3) as {{ c }}_risk,
        round({{ c }}_weight::numeric, 2) as {{ c }}_weight,
        round({{ c }}_points::numeric, 2) as {{ c }}_points,
        {%- endfor %}
        days_since_last_session,
        last_session_date,
        completed_sessions_30d as sessions_30d,
        completed_sessions_prev_30d as sessions_prev_30d,
        avg_rating_30d,
        rated_sessions_30d,
        inbound_calls_30d,
        cancellation_requests_30d,
        distinct_tutors_90d,
        tutor_switches_90d,
        sessions_booked_ahead,
        goal_progress_pct,
        tenure_days,
        acquisition_channel,
        as_of_date,
        computed_at
    from with_week_ago
    where is_current
)

select * from final
{{ full_build_filter(keep_rows) }}

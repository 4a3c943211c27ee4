{#- Tutor performance over a trailing window, shared by tutor_performance_daily (the window
    ending on each day) and tutor_performance (the window ending on the reference date).

    `tutor_rates(source)` selects from a relation holding the window's sums (the
    `tutor_daily_counts` var, suffixed _30d) and adds the rates; `tutor_scores(source)` adds the
    composite success score and the underperforming flag; `tutor_window_columns()` lists what
    both marts publish of it. Only tutor-caused cancellations and no-shows
    count against a tutor. Each component is judged only with data behind it, and the tutor
    only with `tutor_min_sessions` resolved sessions; the first-session component needs
    `tutor_min_first_sessions` resolved first sessions. Because both models recompute from the
    window, a flag clears by itself once the window's metrics recover. -#}

{#- The judged window as the marts publish it: rates rounded, then score, flag and reason.
    Selected from `tutor_scores(...)`. -#}
{% macro tutor_window_columns() -%}
    {%- set terms = tutor_rate_terms() -%}
    {%- for name in ['avg_rating_30d', 'tutor_no_show_rate_30d', 'tutor_cancellation_rate_30d'] %}
    {{ published_rate(name, terms[name]) }},
    {%- endfor %}
    first_sessions_resolved_30d,
    {%- for name in ['first_session_success_rate_30d', 'rebooking_rate_30d', 'utilization_30d'] %}
    {{ published_rate(name, terms[name]) }},
    {%- endfor %}
    success_score,
    is_judged,
    is_underperforming,
    underperforming_reason
{%- endmacro %}


{#- Each rate of the window: (numerator, denominator, digits the marts publish). The rules
    compare the float8 ratio; the marts publish it rounded in numeric, computed from the
    integer sums: casting a float8 to numeric goes through its text form, and those casts cost
    22 of the 40 s a full build of tutor_performance_daily spent on 2.5 M tutor-days at S10. -#}
{% macro tutor_rate_terms() %}
    {{ return({
        'avg_rating_30d': ('rating_points_30d', 'ratings_30d', 2),
        'tutor_no_show_rate_30d': (
            'tutor_no_shows_30d',
            'sessions_completed_30d + tutor_no_shows_30d + customer_no_shows_30d',
            4,
        ),
        'tutor_cancellation_rate_30d': ('tutor_cancellations_30d', 'sessions_resolved_30d', 4),
        'first_session_success_rate_30d': (
            'first_sessions_succeeded_30d',
            'first_sessions_succeeded_30d + first_sessions_failed_30d',
            4,
        ),
        'rebooking_rate_30d': (
            'sessions_rebooked_30d', 'sessions_rebooked_30d + sessions_not_rebooked_30d', 4
        ),
        'utilization_30d': ('completed_minutes_30d', 'available_minutes_30d', 4),
    }) }}
{% endmacro %}


{% macro published_rate(name, term) -%}
    round({{ term[0] }}::numeric / nullif({{ term[1] }}, 0), {{ term[2] }}) as {{ name }}
{%- endmacro %}


{% macro tutor_rates(source) %}
    select
        *,
        {%- for name, term in tutor_rate_terms().items() %}
        {{ term[0] }}::float8 / nullif({{ term[1] }}, 0) as {{ name }},
        {%- endfor %}
        first_sessions_succeeded_30d + first_sessions_failed_30d as first_sessions_resolved_30d,
        sessions_resolved_30d >= {{ var('tutor_min_sessions') }} as is_judged
    from {{ source }}
{% endmacro %}


{% macro tutor_scores(source) %}
    {%- set w = var('tutor_score_weights') -%}
    {%- set t = var('tutor_thresholds') -%}
    {%- set components = {
        'first_session_success':
            'case when rated.first_sessions_resolved_30d >= ' ~ var('tutor_min_first_sessions')
            ~ ' then rated.first_session_success_rate_30d end',
        'rating': '(rated.avg_rating_30d - 1) / 4.0',
        'tutor_no_show': '1 - least(rated.tutor_no_show_rate_30d / 0.2, 1)',
        'tutor_cancellation': '1 - least(rated.tutor_cancellation_rate_30d / 0.2, 1)',
        'rebooking': 'rated.rebooking_rate_30d',
    } -%}
    -- Each level a subquery fenced with `offset 0` (`limit all`: sqlfluff cannot parse a bare
    -- `offset 0`), so every value is computed once per row and read by the next level. Plain
    -- projections, not per-row lateral subqueries: those cost 17 of the 36 s a full build of
    -- tutor_performance_daily spent on its 2.5 M tutor-days at S10. The components and
    -- `breaches` stay in the output; the models select the columns they keep.
    select
        rated.*,
        rated.is_judged and rated.breaches is not null as is_underperforming,
        case when rated.is_judged then rated.breaches end as underperforming_reason
    from (
        select
            rated.*,
            nullif(concat_ws('; ',
                case
                    when rated.first_sessions_resolved_30d >= {{ var('tutor_min_first_sessions') }}
                        and rated.first_session_success_rate_30d < {{ t.first_session_success_rate_min }}
                        then 'first-session success '
                            || round((100 * rated.first_session_success_rate_30d)::numeric)
                            || '% < {{ (100 * t.first_session_success_rate_min) | round | int }}%'
                end,
                case
                    when rated.avg_rating_30d < {{ t.avg_rating_min }}
                        then 'average rating ' || round(rated.avg_rating_30d::numeric, 2)
                            || ' < {{ t.avg_rating_min }}'
                end,
                case
                    when rated.tutor_no_show_rate_30d > {{ t.tutor_no_show_rate_max }}
                        then 'no-show rate ' || round((100 * rated.tutor_no_show_rate_30d)::numeric, 1)
                            || '% > {{ 100 * t.tutor_no_show_rate_max }}%'
                end,
                case
                    when rated.tutor_cancellation_rate_30d > {{ t.tutor_cancellation_rate_max }}
                        then 'cancellation rate '
                            || round((100 * rated.tutor_cancellation_rate_30d)::numeric, 1)
                            || '% > {{ 100 * t.tutor_cancellation_rate_max }}%'
                end,
                case
                    when rated.success_score < {{ t.success_score_min }}
                        then 'success score ' || rated.success_score || ' < {{ t.success_score_min }}'
                end
            ), '') as breaches
        from (
            select
                component.*,
                round((
                    100 * (
                        {%- for name in components %}
                        coalesce(component.{{ name }}_component * {{ w[name] }}, 0){{ ' +' if not loop.last }}
                        {%- endfor %}
                    ) / nullif(
                        {%- for name in components %}
                        case when component.{{ name }}_component is null then 0 else {{ w[name] }} end
                        {{- ' +' if not loop.last }}
                        {%- endfor %}
                    , 0)
                )::numeric, 1) as success_score
            from (
                select
                    rated.*,
                    {%- for name, expression in components.items() %}
                    ({{ expression }})::float8 as {{ name }}_component{{ ',' if not loop.last }}
                    {%- endfor %}
                from {{ source }} as rated
                limit all offset 0
            ) as component
            limit all offset 0
        ) as rated
        limit all offset 0
    ) as rated
{% endmacro %}

{#- Hour grids for the hourly supply/demand models. -#}

{#- The last hour covered: the reference hour plus `supply_horizon_days`. -#}
{% macro horizon_end_hour() -%}
    date_trunc('hour', {{ as_of() }} + interval '{{ var("supply_horizon_days") }} days')
{%- endmacro %}

{#- Hours that entered the horizon since the previous run (after the newest hour in `this`),
    plus `extra_sql` (a query of hour_at), as a query of distinct hour_at. -#}
{% macro new_horizon_hours() -%}
    select generate_series(
        coalesce((select max(hour_at) from {{ this }}), date_trunc('hour', {{ as_of() }}))
        + interval '1 hour',
        {{ horizon_end_hour() }},
        interval '1 hour'
    ) as hour_at
{%- endmacro %}

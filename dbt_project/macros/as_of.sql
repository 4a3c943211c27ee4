{#- Reference time for rolling windows: the `as_of` var, else the start of this dbt run, so
    every model of one build uses the same clock (now() would differ per transaction). -#}
{% macro as_of() -%}
    '{{ var("as_of") or run_started_at.isoformat() }}'::timestamptz
{%- endmacro %}

{#- The reference date (UTC) that day-granular windows end on. -#}
{% macro as_of_date() -%}
    ({{ as_of() }} at time zone 'UTC')::date
{%- endmacro %}

{#- Wall-clock time of this run: stamped on incremental rows as `computed_at`; the next run
    treats rows ingested after it as new. Independent of `as_of`, which may be pinned. -#}
{% macro run_ts() -%}
    '{{ run_started_at.isoformat() }}'::timestamptz
{%- endmacro %}

{#- UTC midnight starting `date_sql` as a timestamptz. -#}
{% macro utc_day_start(date_sql) -%}
    (({{ date_sql }})::timestamp at time zone 'UTC')
{%- endmacro %}

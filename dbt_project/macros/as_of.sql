{#- The reference time for rolling windows: the `as_of` var, else now(). -#}
{% macro as_of() -%}
    {%- if var('as_of') -%} '{{ var("as_of") }}'::timestamptz {%- else -%} now() {%- endif -%}
{%- endmacro %}

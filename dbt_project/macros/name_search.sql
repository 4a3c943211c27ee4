{#- Name search in the app: `ilike '%text%'` served by trigram GIN indexes (pg_trgm, part of
    PostgreSQL's contrib, a trusted extension since PostgreSQL 13: the database owner may
    create it). -#}

{% macro ensure_pg_trgm() -%}
    create extension if not exists pg_trgm
{%- endmacro %}


{#- Post-hook: a trigram GIN index on one text column of this model (see ensure_index). -#}
{% macro trigram_index(column) -%}
    {{ ensure_index(column, 'gin', 'gin_trgm_ops') }}
{%- endmacro %}

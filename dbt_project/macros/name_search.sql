{#- Name search in the app: `ilike '%text%'` served by trigram GIN indexes (pg_trgm, part of
    PostgreSQL's contrib, a trusted extension since PostgreSQL 13: the database owner may
    create it). -#}

{% macro ensure_pg_trgm() -%}
    create extension if not exists pg_trgm
{%- endmacro %}


{#- Post-hook: a trigram GIN index on one text column of this model, created unless the table
    already has one (an incremental run). Unnamed on purpose: on a full refresh the old table
    (and its index names) still exists while the hook runs, and `create index if not exists
    <name>` would then silently skip the new table. -#}
{% macro trigram_index(column) -%}
    do $trgm$
    begin
        if not exists (
            select 1
            from pg_index as i
            where i.indrelid = '{{ this }}'::regclass
              and pg_get_indexdef(i.indexrelid) like '%USING gin ({{ column }} %gin_trgm_ops)%'
        ) then
            create index on {{ this }} using gin ({{ column }} gin_trgm_ops);
        end if;
    end
    $trgm$
{%- endmacro %}

{#- Post-hook: an index on one column of this model, created unless the table already has one
    of that definition (an incremental run). `config(indexes=...)` of an incremental model only
    applies when the table is created, so an index added later reaches existing deployments
    this way. Unnamed on purpose: on a full refresh the old table (and its index names) still
    exists while the hook runs, and `create index if not exists <name>` would then silently
    skip the new table. -#}
{% macro ensure_index(column, method='btree', opclass=none) -%}
    {%- set key = column ~ (' ' ~ opclass if opclass else '') %}
    do $index$
    begin
        if not exists (
            select 1
            from pg_index as i
            where i.indrelid = '{{ this }}'::regclass
              and pg_get_indexdef(i.indexrelid) like '%USING {{ method }} ({{ key }})%'
        ) then
            create index on {{ this }} using {{ method }} ({{ key }});
        end if;
    end
    $index$
{%- endmacro %}

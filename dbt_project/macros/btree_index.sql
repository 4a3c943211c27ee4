{#- A btree index on `column` of this model, created once: `config(indexes=...)` of an
    incremental model only applies when the table is created, so a deployment gets an index
    added later through this post-hook. Checked by definition rather than by name: during a
    full refresh the backup table still holds the old index's name. -#}
{% macro btree_index(column) -%}
    do $btree$
    begin
        if not exists (
            select 1
            from pg_index as i
            where i.indrelid = '{{ this }}'::regclass
              and pg_get_indexdef(i.indexrelid) like '%USING btree ({{ column }})'
        ) then
            create index on {{ this }} ({{ column }});
        end if;
    end
    $btree$
{%- endmacro %}

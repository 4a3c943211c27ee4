{#- The rows of `relation` that are the newest version of their `key`: raw.sessions and
    raw.inbound_calls are keyed on (id, created_at), so a source that rewrites created_at leaves
    two versions of one row. The newest is the one with the latest `order_by` tuple (updated_at,
    then created_at). Written as an anti-join rather than `distinct on (key)` so that filters a
    downstream model puts on other columns (customer, tutor, updated_at) still reach the
    relation's indexes when it selects only a few rows. -#}
{% macro keep_newest_version(relation, key='id', order_by=['updated_at', 'created_at']) -%}
    select latest.*
    from {{ relation }} as latest
    where not exists (
        select 1
        from {{ relation }} as newer
        where
            newer.{{ key }} = latest.{{ key }}
            and (newer.{{ order_by | join(', newer.') }})
            > (latest.{{ order_by | join(', latest.') }})
    )
{%- endmacro %}

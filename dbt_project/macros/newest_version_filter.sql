{#- The condition that keeps, of the rows of `relation` read as `alias`, the newest version of
    each `key`: raw.sessions and raw.inbound_calls are keyed on (id, created_at), so a source
    that rewrites created_at leaves two versions of one row. The newest is the one with the
    latest `order_by` tuple (updated_at, then created_at). An anti-join rather than
    `distinct on (key)`, and a condition for the staging model's own WHERE rather than a CTE,
    so that the view stays one flat select: PostgreSQL flattens it into the query that reads it
    and a filter or join on other columns (customer, tutor, updated_at) reaches the raw table's
    indexes when it needs only a few rows. -#}
{% macro newest_version_filter(relation, alias, key='id', order_by=['updated_at', 'created_at']) -%}
    not exists (
        select 1
        from {{ relation }} as newer
        where
            newer.{{ key }} = {{ alias }}.{{ key }}
            and (newer.{{ order_by | join(', newer.') }})
            > ({{ alias }}.{{ order_by | join(', ' ~ alias ~ '.') }})
    )
{%- endmacro %}

{#- `view` on PostgreSQL: dbt's own view materialization, run only when the view's SQL (or its
    grants) changed or the view is missing - a fingerprint of both is kept in the view's comment.

    Why: dbt recreates every view on every run (create, rename, drop), and each rename and drop
    needs an ACCESS EXCLUSIVE lock on the view. A view that a long query is reading - the churn
    features (minutes at a million customers), a dashboard query - makes the cycle's `dbt build`
    wait for that query to end, and while it waits every new reader of the view queues behind
    it. At S10 a cycle's `stg_marketplace__customers` took 7.3 s this way (0.3 s when nothing
    reads it). A view has no data to refresh, so an unchanged view is left as it is.

    A view dropped by a cascade (dbt drops an upstream view or table with `cascade` when it
    rebuilds it) is missing from the catalog, which is asked directly (not dbt's cache), so it
    is created again. `--full-refresh` recreates every view. -#}

{% materialization view, adapter='postgres' %}
    {%- set fingerprint = 'opsdash fingerprint ' ~ local_md5(
        sql ~ '|grants=' ~ (config.get('grants') | string)
    ) -%}
    {#- Statements through dbt's transaction bookkeeping (run_query opens none), so that the
        commits below close what they opened. -#}
    {%- call statement('opsdash_view_found', fetch_result=True, auto_begin=True) -%}
        select c.relkind::text, coalesce(obj_description(c.oid, 'pg_class'), '')
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = '{{ this.schema }}' and c.relname = '{{ this.identifier }}'
    {%- endcall -%}
    {%- set found = load_result('opsdash_view_found')['data'] -%}
    {%- if found | length == 1 and found[0][0] == 'v' and found[0][1] == fingerprint
        and not should_full_refresh() -%}
        {%- call statement('main') -%}
            select 'view unchanged' as status
        {%- endcall -%}
        {{ adapter.commit() }}
        {{ return({'relations': [this.incorporate(type='view')]}) }}
    {%- endif -%}
    {%- set result = dbt.materialization_view_default() -%}
    {%- call statement('opsdash_view_fingerprint', auto_begin=True) -%}
        comment on view {{ this }} is '{{ fingerprint }}'
    {%- endcall -%}
    {{ adapter.commit() }}
    {{ return(result) }}
{% endmaterialization %}

{#- `rollup`: an aggregate over a time-series mart that the database keeps for us.

    With TimescaleDB: a continuous aggregate (real-time, so rows newer than the last refresh
    are aggregated at query time) with a refresh policy. refresh_continuous_aggregate cannot run
    inside dbt's transaction, so the aggregate is created WITH NO DATA and marked "history
    pending" in its comment; the pipeline's step right after each dbt build
    (opsdash_core/rollups.py) refreshes a marked aggregate over its whole range once and removes
    the mark, and refreshes the others over the recent window. The mark is set by the same
    transaction that creates the aggregate, so every (re)creation - first build, changed SQL,
    --full-refresh, a rebuilt source - gets its history, and a failed refresh is retried.

    Without it: a materialized view with a unique index, refreshed CONCURRENTLY by every dbt run
    (readers are never blocked).

    The view is recreated only when its SQL (or the path) changed, detected through a
    fingerprint kept in the view's comment, with the time of the last refresh. A plain
    materialized view is refreshed at most every `rollup_min_refresh_minutes` (var): the refresh
    reads the whole source, so the 5-minute cycle does it every third run. Model config:
        meta: {rollup: {unique_key: [...], refresh_start: '45 days', refresh_end: '1 hour',
                        schedule: '15 minutes'}}
    The model's SQL must be valid for both: bucket with `{{ time_bucket(...) }}`, aggregate
    with plain aggregates, read one hypertable. -#}

{% materialization rollup, adapter='postgres' %}
    {%- set target = this.incorporate(type='materialized_view') -%}
    {%- set rel = target.include(database=False) -%}
    {%- set timescale = timescaledb_enabled() -%}
    {%- set cfg = (config.get('meta') or {}).get('rollup') or {} -%}
    {%- set fingerprint = local_md5(sql ~ '|timescaledb=' ~ timescale) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {#- Ask the catalog, not dbt's cache: a full refresh of the source drops this view with it. -#}
    {%- set found = run_query(
        "select c.relkind::text, coalesce(obj_description(c.oid, 'pg_class'), '')"
        ~ " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        ~ " where n.nspname = '" ~ this.schema ~ "' and c.relname = '" ~ this.identifier ~ "'"
    ).rows -%}
    {%- set existing_kind = found[0][0] if found | length > 0 else none -%}
    {%- set rebuild = existing_kind is none
        or should_full_refresh()
        or ('fingerprint ' ~ fingerprint) not in found[0][1] -%}
    {%- set refreshed_at = (found[0][1].split('refreshed ') + [''])[1] if found | length > 0 else '' -%}
    {#- Until the pipeline has materialized a new aggregate's history, later runs keep the mark. -#}
    {%- set history_pending = timescale and (rebuild or 'history pending' in found[0][1]) -%}
    {%- set refresh_due = rebuild or timescale or refreshed_at == '' or run_query(
        "select '" ~ refreshed_at ~ "'::timestamptz <= " ~ run_ts()
        ~ " - interval '" ~ var('rollup_min_refresh_minutes', 15) ~ " minutes'"
    ).columns[0].values()[0] -%}

    {%- if rebuild -%}
        {%- if existing_kind in ('m', 'v') -%}
            {% do run_query(
                "drop " ~ ("view" if existing_kind == 'v' and not timescale else "materialized view")
                ~ " if exists " ~ rel ~ " cascade"
            ) %}
        {%- elif existing_kind is not none -%}
            {% do run_query("drop table if exists " ~ rel ~ " cascade") %}
        {%- endif -%}
        {% call statement('main') -%}
            {{ rollup_create_sql(rel, sql, cfg, timescale) }}
            {{ rollup_comment_sql(rel, fingerprint, timescale, history_pending) }}
        {%- endcall %}
    {%- elif refresh_due -%}
        {% call statement('main') -%}
            {{ rollup_refresh_sql(rel, timescale) }};
            {{ rollup_comment_sql(rel, fingerprint, timescale, history_pending) }}
        {%- endcall %}
    {%- else -%}
        {% call statement('main') -%}
            select 'refreshed {{ refreshed_at }}, next after {{ var("rollup_min_refresh_minutes", 15) }} minutes'
        {%- endcall %}
    {%- endif -%}

    {% do persist_docs(target, model) %}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target]}) }}
{% endmaterialization %}


{% macro rollup_create_sql(rel, sql, cfg, timescale) -%}
    {%- if timescale %}
    create materialized view {{ rel }}
    with (timescaledb.continuous, timescaledb.materialized_only = false) as
    {{ sql }}
    with no data;
    select add_continuous_aggregate_policy(
        '{{ rel }}',
        start_offset => interval '{{ cfg.refresh_start or "30 days" }}',
        end_offset => interval '{{ cfg.refresh_end or "1 hour" }}',
        schedule_interval => interval '{{ cfg.schedule or "15 minutes" }}',
        if_not_exists => true
    );
    {%- else %}
    create materialized view {{ rel }} as
    {{ sql }};
    create unique index on {{ rel }} ({{ cfg.unique_key | join(', ') }});
    {%- endif %}
{%- endmacro %}


{#- "history pending, " is read and removed by opsdash_core/rollups.py (HISTORY_PENDING). -#}
{% macro rollup_comment_sql(rel, fingerprint, timescale, history_pending=false) -%}
    comment on {{ 'view' if timescale else 'materialized view' }} {{ rel }}
        is 'opsdash rollup, fingerprint {{ fingerprint }}, {{ "history pending, " if history_pending else "" -}}
        refreshed {{ run_started_at.isoformat() }}'
{%- endmacro %}


{% macro rollup_refresh_sql(rel, timescale) -%}
    {%- if timescale -%}
    -- continuous aggregate: refreshed by its policy and by the pipeline after the build
    select 1
    {%- else -%}
    refresh materialized view concurrently {{ rel }}
    {%- endif -%}
{%- endmacro %}


{#- Time buckets that are valid in a continuous aggregate and in a plain view alike. -#}
{% macro time_bucket(width, column) -%}
    {%- if timescaledb_enabled() -%}
    time_bucket(interval '{{ width }}', {{ column }})
    {%- else -%}
    date_trunc('{{ width.split(" ")[1] }}', {{ column }}, 'UTC')
    {%- endif -%}
{%- endmacro %}

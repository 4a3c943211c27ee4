{#- TimescaleDB detection. The extension is used only when it is installed in this database;
    `ensure_timescaledb` (on-run-start) installs it when the server has it available AND
    preloaded (shared_preload_libraries), which is what TimescaleDB needs to run. -#}

{#- Var `timescaledb`: auto (default) | true | false | assume. `assume` renders the
    TimescaleDB path without asking the database - for `dbt compile` and
    `dbt run-operation print_timescaledb_ddl` checks of that path on a server without it;
    never for a real build. -#}
{% macro timescaledb_enabled() %}
    {%- set mode = var('timescaledb', 'auto') -%}
    {%- if mode == 'assume' -%}{{ return(true) }}{%- endif -%}
    {%- if not execute -%}{{ return(false) }}{%- endif -%}
    {%- if mode is sameas false or mode in ('false', 'off') -%}{{ return(false) }}{%- endif -%}
    {%- set found = run_query(
        "select exists (select 1 from pg_extension where extname = 'timescaledb')"
    ).columns[0].values()[0] -%}
    {%- if (mode is sameas true or mode in ('true', 'on')) and not found -%}
        {{ exceptions.raise_compiler_error(
            "var timescaledb is true but the extension is not installed in this database") }}
    {%- endif -%}
    {{ return(found) }}
{% endmacro %}


{% macro ensure_timescaledb() %}
    {%- if execute and var('timescaledb', 'auto') not in (false, 'false', 'off', 'assume') -%}
        {%- set usable = run_query("
            select exists (select 1 from pg_available_extensions where name = 'timescaledb')
                and current_setting('shared_preload_libraries') like '%timescaledb%'
        ").columns[0].values()[0] -%}
        {%- if usable -%}
            {% do run_query("create extension if not exists timescaledb") %}
            {% do log("TimescaleDB available: time-series marts are hypertables", info=true) %}
        {%- else -%}
            {% do log("TimescaleDB not available: plain PostgreSQL partitions and materialized views", info=true) %}
        {%- endif -%}
    {%- endif -%}
    select 1
{% endmacro %}


{#- `dbt run-operation print_timescaledb_ddl --vars '{timescaledb: assume}'`: the statements the
    TimescaleDB path runs for every time-series and rollup model, one `-- model:` block each,
    its parts under `-- step:` lines (a rollup's query shows as __MODEL_SQL__; `dbt compile`
    with the same var renders it). Lets the tests check that path, statement by statement, on
    a server without TimescaleDB. -#}
{% macro print_timescaledb_ddl() %}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
        {%- set relation = api.Relation.create(
            database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- set meta = node.config.meta or {} -%}
        {%- if meta.get('timeseries') -%}
            {{ print('-- model: ' ~ node.name) }}
            {{ print('-- step: hypertable') }}
            {{ print(hypertable_sql(relation, meta['timeseries'])) }}
            {{ print('-- step: from native partitions, before the hypertable') }}
            {{ print(partitioned_detach_sql(relation) ~ ';') }}
            {{ print('-- step: from native partitions, after the hypertable') }}
            {{ print(partitioned_move_rows_sql(relation)) }}
        {%- endif -%}
        {%- if node.config.materialized == 'rollup' -%}
            {%- set rel = relation.include(database=False) -%}
            {{ print('-- model: ' ~ node.name) }}
            {{ print('-- step: continuous aggregate') }}
            {{ print(rollup_create_sql(rel, '__MODEL_SQL__', meta.get('rollup') or {}, true)) }}
            {{ print('-- step: comment') }}
            {{ print(rollup_comment_sql(rel, '__FINGERPRINT__', true, true) ~ ';') }}
        {%- endif -%}
    {%- endfor -%}
{% endmacro %}

{#- Incremental models in this project follow one pattern:

    1. `previous_run()` reads when the model last ran (max computed_at) and for which reference
       date (max as_of_date, when the model has one).
    2. The model computes a *scope*: the keys touched by rows ingested since then
       (`changed_since(alias, prev)`), plus keys whose time windows moved (a new reference
       date). Without a previous run, or on a new day for day-windowed models, the scope is
       everything.
    3. It recomputes every key in the scope from the full, current data of those keys, stamps
       the rows with `computed_at = run_ts()`, and the `replace_keys` strategy replaces those
       keys in the table.

    Recomputing whole keys (instead of adding deltas) is what makes duplicates, re-ingested
    windows and late rows harmless: a key's row is always a function of its current data, so
    running an increment twice, or the same rows arriving twice, changes nothing. -#}

{% macro previous_run() %}
    {%- if not execute or not is_incremental() -%}{{ return(none) }}{%- endif -%}
    {%- set cols = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
    {%- set date_sql = 'max(as_of_date)::text' if 'as_of_date' in cols else 'null::text' -%}
    {%- set row = run_query(
        'select max(computed_at)::text, ' ~ date_sql ~ ', ('
        ~ as_of_date() ~ ')::text from ' ~ this
    ).rows[0] -%}
    {%- if row[0] is none -%}{{ return(none) }}{%- endif -%}
    {{ return({
        'computed_at': row[0],
        'as_of_date': row[1],
        'new_day': row[1] is not none and row[1] < row[2],
    }) }}
{% endmacro %}


{#- Wait for every ingestion transaction in flight (each holds the shared advisory lock
    `opsdash.ingest` until it commits, see orchestration/lib/ingest/loader.py). A row's
    `_ingested_at` is its transaction's start; without this wait a transaction that started
    before this build and committed after a model read the raw tables would stamp rows older
    than the build's `run_ts()`, and the next build would not see them as new. Runs after
    `run_started_at` is taken, so every transaction started before it has committed before any
    model reads. -#}
{% macro wait_for_ingestion() -%}
    select pg_advisory_lock(hashtext('opsdash.ingest'));
    select pg_advisory_unlock(hashtext('opsdash.ingest'))
{%- endmacro %}


{#- Rows of a staging relation that arrived since the previous run: ingested after it (less a
    margin for ingestion transactions still open then), and - to use the updated_at index -
    changed in the source no longer than `late_arrival_window` before it. -#}
{% macro changed_since(alias, prev) -%}
    {{ alias }}._ingested_at > '{{ prev.computed_at }}'::timestamptz - interval '{{ var("ingest_margin") }}'
    and {{ alias }}.updated_at > '{{ prev.computed_at }}'::timestamptz - interval '{{ var("late_arrival_window") }}'
{%- endmacro %}


{#- Custom incremental strategy: delete every key present in the new rows, then insert the new
    rows that pass `meta.insert_filter`. A model emits a row for every key in its scope; keys
    that should no longer exist (a deleted customer, a day that lost its last session) come with
    a row that fails the filter, so they are deleted and not re-inserted. -#}
{% macro get_incremental_replace_keys_sql(arg_dict) %}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set keys = arg_dict['unique_key'] -%}
    {%- set keys = [keys] if keys is string else keys -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set insert_filter = (config.get('meta') or {}).get('insert_filter') -%}
    {%- set ts = (config.get('meta') or {}).get('timeseries') -%}
    delete from {{ target }} as target
    using (select distinct {{ keys | join(', ') }} from {{ source }}) as scope
    where
        {%- for key in keys %}
        target.{{ key }} = scope.{{ key }}{{ ' and' if not loop.last }}
        {%- endfor %}
        {%- if ts and ts.time_column in keys %}
        -- only the partitions / chunks the new rows fall in (older, compressed chunks untouched)
        and target.{{ ts.time_column }} >= (select min({{ ts.time_column }}) from {{ source }})
        and target.{{ ts.time_column }} <= (select max({{ ts.time_column }}) from {{ source }})
        {%- endif %};

    insert into {{ target }} ({{ columns }})
    select {{ columns }}
    from {{ source }}
    {%- if insert_filter %}
    where {{ insert_filter }}
    {%- endif %}
{% endmacro %}


{#- On a full build the table is created from the model's rows as they are: apply the
    `replace_keys` insert filter (the model passes the same string it puts in
    meta.insert_filter) there too, so both paths keep the same rows. -#}
{% macro full_build_filter(insert_filter) -%}
    {%- if not is_incremental() -%}
    where {{ insert_filter }}
    {%- endif -%}
{%- endmacro %}


{#- Post-hook: refresh planner statistics when a table was (re)built in this run - every
    table model, and an incremental model whose rows all carry this run's computed_at (full
    build, or a new reference date that rescored everything). Downstream models read these
    tables within seconds, long before autovacuum would analyze them. Only the indexed columns
    are analyzed when the model has indexes: those are what the joins and filters use.
    Time-series models analyze in timeseries_finalize, after their conversion. -#}
{% macro analyze_if_rebuilt(from_finalize=false) -%}
    {%- set ts = timeseries_config() -%}
    {%- if not execute or model.config.materialized not in ('table', 'incremental')
        or (ts is not none and not from_finalize) -%}
        {{ return('') }}
    {%- endif -%}
    {%- if model.config.materialized == 'incremental' and run_query(
        'select exists (select 1 from ' ~ this ~ ' where computed_at < ' ~ run_ts() ~ ')'
    ).columns[0].values()[0] -%}
        {{ return('') }}
    {%- endif -%}
    {%- set columns = [ts.time_column] if ts is not none else [] -%}
    {%- for index in (ts.indexes if ts is not none else config.get('indexes')) or [] -%}
        {%- for column in index['columns'] if column not in columns -%}
            {%- do columns.append(column) -%}
        {%- endfor -%}
    {%- endfor -%}
    analyze {{ this }}{% if columns %} ({{ columns | join(', ') }}){% endif %}
{%- endmacro %}

{#- Time-series marts: one model config, two storage layouts.

    A model opts in with
        meta: {timeseries: {time_column, partition: day|month, chunk, compress_after,
                            segment_by, order_by, retention, ahead, indexes}}
    and the hooks `timeseries_prepare()` (pre) / `timeseries_finalize()` (post).

    With TimescaleDB the table becomes a hypertable (chunks of `chunk`), compressed after
    `compress_after` (segmented by `segment_by` - none when empty - and ordered by `order_by`,
    default `<time_column> desc`) and dropped after `retention`, by TimescaleDB's own
    background policies. A table left natively partitioned by the plain path (a deployment
    switching to TimescaleDB) is turned into a hypertable holding the same rows, which keeps
    the history of models that cannot be rebuilt (customer_health_history).

    Without it the table becomes a natively range-partitioned table: one partition per
    day/month named <table>__pYYYYMMDD, a DEFAULT partition that catches rows outside the
    prepared range (moved into proper partitions by the next finalize), partitions prepared
    `ahead` of the reference time, and partitions entirely older than `retention` dropped.

    dbt creates the table with CREATE TABLE AS on a full build; finalize then converts it
    (one copy of the rows, only on full builds) and creates `indexes` (kept out of dbt's own
    `indexes` config so they are built once, on the final table). Incremental runs insert into
    the prepared partitions directly. -#}

{% macro timeseries_config() %}
    {{ return((config.get('meta') or {}).get('timeseries')) }}
{% endmacro %}


{% macro relation_kind(relation) %}
    {#- pg_class.relkind of the relation: 'r' table, 'p' partitioned table, none if missing. -#}
    {%- set rows = run_query(
        "select c.relkind::text from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        ~ " where n.nspname = '" ~ relation.schema ~ "' and c.relname = '" ~ relation.identifier ~ "'"
    ).rows -%}
    {{ return(rows[0][0] if rows | length > 0 else none) }}
{% endmacro %}


{% macro is_hypertable(relation) %}
    {%- if var('timescaledb', 'auto') == 'assume' -%}{{ return(false) }}{%- endif -%}
    {{ return(run_query(
        "select exists (select 1 from timescaledb_information.hypertables"
        ~ " where hypertable_schema = '" ~ relation.schema ~ "'"
        ~ " and hypertable_name = '" ~ relation.identifier ~ "')"
    ).columns[0].values()[0]) }}
{% endmacro %}


{#- Pre-hook: on the plain path make sure the partitions around the reference time exist, so
    the common incremental insert lands in its final partition. -#}
{% macro timeseries_prepare() %}
    {%- set ts = timeseries_config() -%}
    {%- if not execute or ts is none or timescaledb_enabled() -%}{{ return('') }}{%- endif -%}
    {%- if relation_kind(this) != 'p' -%}{{ return('') }}{%- endif -%}
    {{ return(partition_maintenance_sql(this, ts)) }}
{% endmacro %}


{#- Post-hook: turn a freshly built table into a hypertable / partitioned table, then apply
    the policies. Runs inside the model's transaction. -#}
{% macro timeseries_finalize() %}
    {%- set ts = timeseries_config() -%}
    {%- if not execute or ts is none -%}{{ return('') }}{%- endif -%}
    {%- set kind = relation_kind(this) -%}
    {%- if timescaledb_enabled() -%}
        {%- set built_now = kind in ('r', 'p') and not is_hypertable(this) -%}
        {%- if kind == 'p' -%}
            {% do run_query(partitioned_to_hypertable_sql(this, ts)) %}
        {%- else -%}
            {% do run_query(hypertable_sql(this, ts)) %}
        {%- endif -%}
    {%- else -%}
        {%- set built_now = kind == 'r' -%}
        {%- if built_now -%}
            {% do convert_to_partitioned(this, ts) %}
        {%- else -%}
            {% do run_query(partition_maintenance_sql(this, ts)) %}
        {%- endif -%}
    {%- endif -%}
    {%- if built_now -%}
        {%- for index in ts.indexes or [] -%}
            {% do run_query(get_create_index_sql(this, index)) %}
        {%- endfor -%}
    {%- endif -%}
    {%- set analyze = analyze_if_rebuilt(from_finalize=true) -%}
    {%- if analyze | trim -%}
        {% do run_query(analyze) %}
    {%- endif -%}
    {{ return('') }}
{% endmacro %}


{% macro hypertable_sql(relation, ts) -%}
    {%- set col = ts.time_column -%}
    {%- set rel = relation.include(database=False) -%}
    {%- if not is_hypertable(relation) %}
    -- migrate_data: dbt filled the table with CREATE TABLE AS before this hook runs
    select create_hypertable(
        '{{ rel }}', '{{ col }}',
        chunk_time_interval => interval '{{ ts.chunk or ('1 ' ~ (ts.partition or 'month')) }}',
        migrate_data => true,
        if_not_exists => true
    );
    {%- endif %}
    {%- if ts.compress_after %}
    do $$
    begin
        if not exists (
            select 1 from timescaledb_information.hypertables
            where hypertable_schema = '{{ relation.schema }}'
              and hypertable_name = '{{ relation.identifier }}'
              and compression_enabled
        ) then
            alter table {{ rel }} set (
                timescaledb.compress,
                timescaledb.compress_segmentby = '{{ ts.segment_by or "" }}',
                timescaledb.compress_orderby = '{{ ts.order_by or (col ~ " desc") }}'
            );
        end if;
    end $$;
    select add_compression_policy(
        '{{ rel }}', compress_after => interval '{{ ts.compress_after }}', if_not_exists => true
    );
    {%- endif %}
    {%- if ts.retention %}
    select add_retention_policy(
        '{{ rel }}', drop_after => interval '{{ ts.retention }}', if_not_exists => true
    );
    {%- endif %}
{%- endmacro %}


{#- A natively partitioned table (the plain path's layout) becomes a hypertable with the same
    rows: the partitioned table steps aside, an empty plain table of the same shape becomes the
    hypertable, the rows move over (straight into chunks, one copy), and the old table goes with
    its partitions and dependents (the rollups, which dbt recreates later in the same run). -#}
{% macro partitioned_to_hypertable_sql(relation, ts) -%}
    {{ partitioned_detach_sql(relation) }};
    {{ hypertable_sql(relation, ts) }}
    {{ partitioned_move_rows_sql(relation) }}
{%- endmacro %}


{% macro partitioned_detach_sql(relation) -%}
    {%- set old_name = relation.identifier ~ '__partitioned' -%}
    {%- set old = relation.incorporate(path={'identifier': old_name}) -%}
    drop table if exists {{ old.include(database=False) }} cascade;
    alter table {{ relation.include(database=False) }} rename to {{ adapter.quote(old_name) }};
    create table {{ relation.include(database=False) }}
        (like {{ old.include(database=False) }} including defaults including constraints)
{%- endmacro %}


{% macro partitioned_move_rows_sql(relation) -%}
    {%- set old = relation.incorporate(path={'identifier': relation.identifier ~ '__partitioned'}) -%}
    insert into {{ relation.include(database=False) }} select * from {{ old.include(database=False) }};
    drop table {{ old.include(database=False) }} cascade;
{%- endmacro %}


{#- Replace the plain table dbt built with a range-partitioned one holding the same rows.
    The previous incarnation's partitions (kept by a full-refresh backup until dbt drops it
    after commit) would clash by name, so the backup goes first. -#}
{% macro convert_to_partitioned(relation, ts) %}
    {%- set col = ts.time_column -%}
    {%- set staging_name = relation.identifier ~ '__unpartitioned' -%}
    {%- set staging = relation.incorporate(path={'identifier': staging_name}) -%}
    {%- set backup = make_backup_relation(relation, 'table') -%}
    {% do run_query("drop table if exists " ~ backup ~ " cascade") %}
    {% do run_query("drop table if exists " ~ staging ~ " cascade") %}
    {% do run_query("alter table " ~ relation ~ " rename to " ~ adapter.quote(staging_name)) %}
    {% do run_query(
        "create table " ~ relation ~ " (like " ~ staging ~ " including defaults including constraints)"
        ~ " partition by range (" ~ adapter.quote(col) ~ ")"
    ) %}
    {% do run_query(partition_maintenance_sql(relation, ts, data_relation=staging)) %}
    {% do run_query("insert into " ~ relation ~ " select * from " ~ staging) %}
    {% do run_query("drop table " ~ staging) %}
{% endmacro %}


{#- One DO block: create the DEFAULT partition and the partitions from one period before the
    reference time to `ahead` past it (widened to the rows of `data_relation` when converting),
    move rows parked in the DEFAULT partition into proper partitions, and drop partitions
    entirely older than `retention`. Idempotent; reads no rows outside the DEFAULT partition. -#}
{% macro partition_maintenance_sql(relation, ts, data_relation=none) -%}
    {%- set col = ts.time_column -%}
    {%- set unit = ts.partition or 'month' -%}
    {%- set rel = relation.include(database=False) -%}
do $maintenance$
declare
    parent regclass := '{{ rel }}'::regclass;
    parent_schema text := '{{ relation.schema }}';
    parent_name text := '{{ relation.identifier }}';
    default_name text := '{{ relation.identifier }}__pdefault';
    step interval := interval '1 {{ unit }}';
    ref timestamp := {{ as_of() }} at time zone 'UTC';
    lo timestamp := ref - step;
    hi timestamp := ref + interval '{{ ts.ahead or "0 days" }}';
    parked timestamp[];
    p timestamp;
    part text;
begin
    perform set_config('timezone', 'UTC', true);
    if to_regclass(format('%I.%I', parent_schema, default_name)) is null then
        execute format('create table %I.%I partition of %s default',
                       parent_schema, default_name, parent);
    end if;
    {%- if data_relation is not none %}
    select least(lo, min({{ adapter.quote(col) }})::timestamp),
           greatest(hi, max({{ adapter.quote(col) }})::timestamp)
    into lo, hi
    from {{ data_relation.include(database=False) }};
    {%- endif %}
    lo := date_trunc('{{ unit }}', lo);

    -- rows parked in the DEFAULT partition: take them out, create their partitions, put back
    execute format('select array_agg(distinct date_trunc(%L, %I)::timestamp) from %I.%I',
                   '{{ unit }}', '{{ col }}', parent_schema, default_name)
        into parked;
    foreach p in array coalesce(parked, '{}'::timestamp[]) loop
        execute format(
            'create temp table _opsdash_parked on commit drop as '
            'with moved as (delete from %I.%I where %I >= %L and %I < %L returning *) '
            'select * from moved',
            parent_schema, default_name, '{{ col }}', p, '{{ col }}', p + step);
        part := parent_name || '__p' || to_char(p, 'YYYYMMDD');
        if to_regclass(format('%I.%I', parent_schema, part)) is null then
            execute format('create table %I.%I partition of %s for values from (%L) to (%L)',
                           parent_schema, part, parent, p, p + step);
        end if;
        execute format('insert into %s select * from _opsdash_parked', parent);
        drop table _opsdash_parked;
    end loop;

    p := lo;
    while p <= hi loop
        part := parent_name || '__p' || to_char(p, 'YYYYMMDD');
        if to_regclass(format('%I.%I', parent_schema, part)) is null then
            execute format('create table %I.%I partition of %s for values from (%L) to (%L)',
                           parent_schema, part, parent, p, p + step);
        end if;
        p := p + step;
    end loop;
    {%- if ts.retention %}

    -- retention: drop partitions whose whole range is older than the cut-off
    for part in
        select c.relname
        from pg_inherits as i
        join pg_class as c on c.oid = i.inhrelid
        where i.inhparent = parent
          and c.relname ~ ('^' || parent_name || '__p[0-9]{8}$')
          and to_timestamp(right(c.relname, 8), 'YYYYMMDD')::timestamp + step
              <= ref - interval '{{ ts.retention }}'
    loop
        execute format('drop table %I.%I', parent_schema, part);
    end loop;
    {%- endif %}
end
$maintenance$
{%- endmacro %}

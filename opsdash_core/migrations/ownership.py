"""Who owns what in the warehouse, re-applied after every `migrate` (migrations/env.py).

Two components do DDL on their own tables and so must own them: ingestion drops and rebuilds
raw's non-unique indexes around a first load (`opsdash_ingest` owns `raw`'s tables), and dbt
recreates its tables on every run (`opsdash_transform` owns everything in `staging`,
`intermediate` and `marts`). Migrations run as the superuser, so a table a later migration adds
there starts as the superuser's; this hands it over right after, in the same transaction.
Objects the bootstrap superuser owns cannot be `REASSIGN OWNED`, so each goes one by one.
A no-op until migration 0013 has created the roles.
"""

from __future__ import annotations

OWNERS = (
    ("raw", "opsdash_ingest"),
    ("staging", "opsdash_transform"),
    ("intermediate", "opsdash_transform"),
    ("marts", "opsdash_transform"),
)

# Views and materialized views need their own ALTER; a TimescaleDB continuous aggregate takes
# ALTER MATERIALIZED VIEW. Sequences and indexes follow their table; partitions are tables of
# their own (ALTER TABLE on the parent does not recurse). A relation that refuses is reported,
# not fatal (dbt's next full refresh replaces its own).
HAND_OVER = """
do $$
declare
    target regrole := to_regrole('{role}');
    rel record;
    kind text;
begin
    if target is null or to_regnamespace('{schema}') is null then
        return;
    end if;
    for rel in
        select c.oid::regclass as name, c.relkind
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = '{schema}' and c.relkind in ('r', 'p', 'v', 'm', 'f')
          and c.relowner <> target
        order by c.relispartition
    loop
        kind := case rel.relkind when 'v' then 'view' when 'm' then 'materialized view'
                when 'f' then 'foreign table' else 'table' end;
        begin
            execute format('alter %s %s owner to %I', kind, rel.name, '{role}');
        exception when others then
            begin
                execute format('alter materialized view %s owner to %I', rel.name, '{role}');
            exception when others then
                raise warning 'opsdash: % % stays with its owner: %', kind, rel.name, sqlerrm;
            end;
        end;
    end loop;
end $$;
"""


def statements() -> list[str]:
    """The hand-over blocks, one per schema (constants only: nothing here comes from input)."""
    return [HAND_OVER.format(schema=schema, role=role) for schema, role in OWNERS]

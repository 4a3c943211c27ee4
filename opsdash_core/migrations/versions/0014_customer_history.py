"""Customer attributes as they were: `raw.customers_history`; and `ml.churn_monitoring`.

The source overwrites a customer's goal progress, status, goal, grade and deletion in place, and
ingestion upserts the newest version into `raw.customers`. A model trained at a past cut-off
must read those attributes as they were then, so the warehouse keeps every version it replaces:

- `raw.customers_history`: one row per replaced version of a customer (only when a tracked
  attribute changed), valid from its `updated_at` (`valid_from`) until the `updated_at` of the
  version that replaced it (`valid_to`). The version valid at T is the current row when its
  `updated_at` <= T, else the history row with `valid_from <= T < valid_to`.
- Filled by an AFTER UPDATE row trigger on `raw.customers` whose WHEN clause compares the
  tracked columns, so an upsert that changes nothing tracked costs one comparison and no
  function call; a changed row costs one small insert. Ingestion's first load COPYs into the
  empty table (an INSERT: the trigger never fires) and its later cycles update a few rows.
  A dbt snapshot would instead compare every customer on every cycle.
- `raw.customers_history_coverage`: one row, `began_at`, the earliest cut-off whose versions
  the history holds completely. Versions overwritten before the trigger existed are lost, so
  history covers T only from the newest `updated_at` the table held when history began: set
  here when `raw.customers` already has rows, or else by a statement trigger before the first
  UPDATE (ingestion's first incremental upsert, after its first load): one lookup in a
  one-row table per statement. A warehouse loaded only by inserts has no row, and no past
  cut-off is covered; truncating `raw.customers` deletes the row (history restarts). Before
  `began_at` an attribute is unknown for every customer (`ml.features`): whether one customer's
  value were known would depend on whether they were updated later, which is the future.

`ml.churn_monitoring` shows the churn model's monitoring history in one place: the daily PSI
per feature (`ml.churn_drift`) and the realized accuracy of past scores (`ml.churn_accuracy`),
one row per model, version, date, metric and feature. It is the relation of the asset
`ml/churn_monitoring` that writes both tables. (`ml.model_monitoring` is the demand forecast's
accuracy table, migration 0004, which the forecast alert rule reads.)

Both raw tables are handed to `opsdash_ingest` after the migration (migrations/ownership.py),
whose upserts fire the trigger; the readers get SELECT by raw's default privileges, granted
again here explicitly.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

HISTORY = """
create table if not exists raw.customers_history (
    customer_id bigint not null,
    goal text,
    goal_progress_pct integer,
    status text not null,
    grade_level integer,
    deleted_at timestamptz,
    valid_from timestamptz not null,
    valid_to timestamptz not null,
    recorded_at timestamptz not null default now()
);
-- The version valid at T for the customers changed after T: valid_to > T, then per customer.
create index if not exists customers_history_valid_to_idx
    on raw.customers_history (valid_to);
create index if not exists customers_history_customer_idx
    on raw.customers_history (customer_id, valid_to);

create table if not exists raw.customers_history_coverage (
    is_single boolean primary key default true check (is_single),
    began_at timestamptz not null,
    recorded_at timestamptz not null default now()
);
insert into raw.customers_history_coverage (began_at)
select max(updated_at) from raw.customers having count(*) > 0
on conflict do nothing;

create or replace function raw.record_customer_version() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into raw.customers_history (
        customer_id, goal, goal_progress_pct, status, grade_level, deleted_at,
        valid_from, valid_to
    ) values (
        old.id, old.goal, old.goal_progress_pct, old.status, old.grade_level, old.deleted_at,
        old.updated_at, new.updated_at
    );
    return null;
end
$$;

-- Before the first UPDATE statement (an upsert fires it too) on a table that has rows, history
-- begins: every version there from then on is kept, so cut-offs from the newest updated_at
-- are covered. Afterwards one lookup in a one-row table per statement.
create or replace function raw.start_customer_history() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if not exists (select from raw.customers_history_coverage) then
        insert into raw.customers_history_coverage (began_at)
        select max(c.updated_at) from raw.customers as c having count(*) > 0
        on conflict do nothing;
    end if;
    return null;
end
$$;

-- A truncated raw.customers is a fresh start: its next load holds versions whose predecessors
-- were never kept, so the history is complete again only from the next update on.
create or replace function raw.restart_customer_history() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    delete from raw.customers_history_coverage;
    return null;
end
$$;

drop trigger if exists customers_restart_history on raw.customers;
create trigger customers_restart_history
    after truncate on raw.customers
    for each statement
    execute function raw.restart_customer_history();

drop trigger if exists customers_start_history on raw.customers;
create trigger customers_start_history
    before update on raw.customers
    for each statement
    execute function raw.start_customer_history();

drop trigger if exists customers_keep_history on raw.customers;
create trigger customers_keep_history
    after update on raw.customers
    for each row
    when (
        old.goal_progress_pct is distinct from new.goal_progress_pct
        or old.status is distinct from new.status
        or old.goal is distinct from new.goal
        or old.grade_level is distinct from new.grade_level
        or old.deleted_at is distinct from new.deleted_at
    )
    execute function raw.record_customer_version();

grant select on raw.customers_history, raw.customers_history_coverage
    to opsdash_transform, opsdash_ml, opsdash_app;
grant select, insert, update, delete on raw.customers_history, raw.customers_history_coverage
    to opsdash_ingest;
"""

MONITORING = """
create or replace view ml.churn_monitoring as
select
    d.model_name,
    d.model_version,
    d.monitored_date as metric_date,
    'feature_drift_psi'::text as metric_kind,
    d.feature,
    d.psi as value,
    d.threshold,
    d.is_drifted,
    null::integer as customers,
    d.computed_at
from ml.churn_drift as d
union all
select
    a.model_name,
    a.model_version,
    a.scored_date,
    m.metric_kind,
    null::text,
    m.value,
    case when m.metric_kind = 'realized_roc_auc' then null else a.threshold end,
    null::boolean,
    a.customers,
    a.computed_at
from ml.churn_accuracy as a
cross join lateral (
    values
        ('realized_roc_auc', a.roc_auc),
        ('realized_recall', a.recall),
        ('realized_precision', a.precision)
) as m (metric_kind, value);

comment on view ml.churn_monitoring is
    'Churn model monitoring, one row per model, date, metric and feature: daily PSI per '
    'feature against the training sample (feature_drift_psi; threshold = PSI alert level, '
    'is_drifted above it) and the realized accuracy of the scores of a date once their '
    'outcome is known (realized_roc_auc, realized_recall and realized_precision at the '
    'threshold the scores used).';
grant select on ml.churn_monitoring to opsdash_ml, opsdash_transform, opsdash_app;
"""


def upgrade() -> None:
    op.execute(HISTORY)
    op.execute(MONITORING)


def downgrade() -> None:
    op.execute(
        """
        drop view if exists ml.churn_monitoring;
        drop trigger if exists customers_keep_history on raw.customers;
        drop trigger if exists customers_start_history on raw.customers;
        drop trigger if exists customers_restart_history on raw.customers;
        drop function if exists raw.record_customer_version();
        drop function if exists raw.start_customer_history();
        drop function if exists raw.restart_customer_history();
        drop table if exists raw.customers_history_coverage;
        drop table if exists raw.customers_history;
        """
    )

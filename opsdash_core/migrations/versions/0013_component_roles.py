"""Least privilege: one PostgreSQL role per component, and what each may read and write.

Until now every component connected as the cluster's bootstrap superuser. This revision creates
the component roles (only when missing: roles belong to the cluster, not to this database) and
grants them exactly what they use in this warehouse:

| role                   | reads                                  | writes                                  |
|------------------------|----------------------------------------|-----------------------------------------|
| opsdash_ingest         | raw                                    | owns raw's tables                       |
| opsdash_transform      | raw, app, ml                           | owns staging, intermediate, marts (dbt) |
| opsdash_ml             | raw, staging, intermediate, marts, ml  | ml                                      |
| opsdash_pipeline       | ingest + transform + ml (member), app, | quality; app's alerting, outbox and     |
| (Dagster, watchdog)    | quality                                | recommendation tables (not users, user  |
|                        |                                        | sessions, audit log)                    |
| opsdash_app (Streamlit)| raw, marts, ml, app, quality           | app.users (insert/update), audit_log    |
|                        |                                        | (insert), alert status and its events,  |
|                        |                                        | silences, recommendation status and its |
|                        |                                        | events, user_sessions                   |

`opsdash_dagster`, `opsdash_mlflow` (owners of their databases) and `opsdash_source_reader`
(SELECT on the marketplace) are created here too; their grants live in other databases, which
`opsdash up` sets up (opsdash_stack/services/postgres.py `apply_roles`), and so do the
passwords (from `.env`, as SCRAM verifiers).

dbt recreates its tables on every run, so the dbt schemas and everything in them belong to
`opsdash_transform` (dbt runs `set role opsdash_transform`: profiles.yml `role`), and its
default privileges give every table it creates later to the readers; ingestion rebuilds raw's
indexes around a first load, so raw's tables belong to `opsdash_ingest`. Objects an earlier
release built there as the superuser, and tables later migrations add there, are handed over
after every migration run (migrations/ownership.py, called from env.py). Tables that later
migrations create in raw/app/ml/quality (as the migrating superuser) get the readers' and the
pipeline's grants by default privileges; a later migration whose table the *app* writes must
grant that write itself.

`opsdash_transform` can log in (no password: nobody can authenticate as it) because
TimescaleDB's background jobs run as the owner of the policy, and PostgreSQL 15 refuses a
background worker a role without LOGIN.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ROLES = (
    ("opsdash_ingest", "nologin"),
    ("opsdash_transform", "login"),
    ("opsdash_ml", "nologin"),
    ("opsdash_pipeline", "login"),
    ("opsdash_app", "login"),
    ("opsdash_dagster", "login"),
    ("opsdash_mlflow", "login"),
    ("opsdash_source_reader", "login"),
)
DBT_SCHEMAS = ("staging", "intermediate", "marts")

CREATE_ROLE = """
do $$
begin
    if not exists (select from pg_roles where rolname = '{role}') then
        create role {role} {login};
    end if;
exception when duplicate_object then
    null;  -- created meanwhile by a migration of another database on this cluster
end $$;
"""

GRANTS = """
-- Memberships: the Dagster run process is the union of the pipeline's components.
grant opsdash_ingest, opsdash_transform, opsdash_ml to opsdash_pipeline;

-- raw: ingestion writes, everyone else reads.
grant usage, create on schema raw to opsdash_ingest;  -- CREATE INDEX checks the schema
grant usage on schema raw to opsdash_transform, opsdash_ml, opsdash_app;
grant select, insert, update, delete on all tables in schema raw to opsdash_ingest;
grant usage, select on all sequences in schema raw to opsdash_ingest;
grant select on all tables in schema raw to opsdash_transform, opsdash_ml, opsdash_app;
alter default privileges in schema raw
    grant select, insert, update, delete on tables to opsdash_ingest;
alter default privileges in schema raw grant usage, select on sequences to opsdash_ingest;
alter default privileges in schema raw
    grant select on tables to opsdash_transform, opsdash_ml, opsdash_app;

-- ml: the ML domain writes, dbt (forecast staging) and the app read.
grant usage on schema ml to opsdash_ml, opsdash_transform, opsdash_app;
grant select, insert, update, delete on all tables in schema ml to opsdash_ml;
grant usage, select on all sequences in schema ml to opsdash_ml;
grant select on all tables in schema ml to opsdash_transform, opsdash_app;
alter default privileges in schema ml
    grant select, insert, update, delete on tables to opsdash_ml;
alter default privileges in schema ml grant usage, select on sequences to opsdash_ml;
alter default privileges in schema ml grant select on tables to opsdash_transform, opsdash_app;

-- quality: the data checks (pipeline) write, the app reads.
grant usage on schema quality to opsdash_pipeline, opsdash_app;
grant select, insert, update, delete on all tables in schema quality to opsdash_pipeline;
grant usage, select on all sequences in schema quality to opsdash_pipeline;
grant select on all tables in schema quality to opsdash_app;
alter default privileges in schema quality
    grant select, insert, update, delete on tables to opsdash_pipeline;
alter default privileges in schema quality grant usage, select on sequences to opsdash_pipeline;
alter default privileges in schema quality grant select on tables to opsdash_app;

-- app: the pipeline (alerting, outbox, recommendations) writes all but the accounts; the app
-- reads everything and writes only what a user's action changes; dbt reads the sources.
grant usage on schema app to opsdash_pipeline, opsdash_app, opsdash_transform;
grant select, insert, update, delete on all tables in schema app to opsdash_pipeline;
grant usage, select on all sequences in schema app to opsdash_pipeline;
revoke insert, update, delete on app.users, app.user_sessions, app.audit_log
    from opsdash_pipeline;
grant select on all tables in schema app to opsdash_app, opsdash_transform;
grant usage, select on all sequences in schema app to opsdash_app;
alter default privileges in schema app
    grant select, insert, update, delete on tables to opsdash_pipeline;
alter default privileges in schema app grant usage, select on sequences to opsdash_pipeline;
alter default privileges in schema app grant usage, select on sequences to opsdash_app;
alter default privileges in schema app grant select on tables to opsdash_app, opsdash_transform;
grant insert, update on app.users to opsdash_app;
grant insert on app.audit_log to opsdash_app;
grant insert, update, delete on app.user_sessions to opsdash_app;
grant update (status, acknowledged_by, acknowledged_at, ack_comment, closed_by, resolved_at,
              updated_at)
    on app.alerts to opsdash_app;
grant insert on app.alert_events to opsdash_app;
grant insert, update on app.silences to opsdash_app;
grant update on app.recommendations to opsdash_app;
grant insert on app.recommendation_events to opsdash_app;

-- dbt's schemas belong to opsdash_transform; readers get what it creates, now and later.
grant usage on schema staging, intermediate, marts to opsdash_ml, opsdash_app;
grant select on all tables in schema staging, intermediate, marts to opsdash_ml, opsdash_app;
alter default privileges for role opsdash_transform in schema staging, intermediate, marts
    grant select on tables to opsdash_ml, opsdash_app;
"""


def upgrade() -> None:
    for role, login in ROLES:
        op.execute(CREATE_ROLE.format(role=role, login=login))
    # dbt creates a missing schema (and pg_trgm, a trusted extension): CREATE on the database.
    op.execute(
        "do $$ begin execute format('grant create, connect, temporary on database %I"
        " to opsdash_transform', current_database()); end $$;"
    )
    for schema in DBT_SCHEMAS:
        op.execute(f"create schema if not exists {schema}")
        op.execute(f"alter schema {schema} owner to opsdash_transform")
    op.execute(GRANTS)


def downgrade() -> None:
    """Revoke this database's grants; the roles stay (other databases of the cluster may use
    them), and so do the dbt objects' owners."""
    op.execute(
        """
        revoke all on all tables in schema raw, ml, quality, app from opsdash_ingest,
            opsdash_transform, opsdash_ml, opsdash_pipeline, opsdash_app;
        revoke all on schema raw, ml, quality, app from opsdash_ingest, opsdash_transform,
            opsdash_ml, opsdash_pipeline, opsdash_app;
        alter default privileges in schema raw, ml, quality, app revoke all on tables
            from opsdash_ingest, opsdash_transform, opsdash_ml, opsdash_pipeline, opsdash_app;
        alter default privileges in schema raw, ml, quality, app revoke all on sequences
            from opsdash_ingest, opsdash_transform, opsdash_ml, opsdash_pipeline, opsdash_app;
        """
    )

"""Data quality: the history of Great Expectations check runs, and the indexes that let each
check read only the rows loaded since its previous run.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

QUALITY = """
create schema if not exists quality;

-- One row per suite run (one Dagster asset check execution). window_end is where the check's
-- next window starts.
create table quality.check_runs (
    id bigserial primary key,
    check_name text not null,
    asset_key text not null,
    suite text not null,
    severity text not null check (severity in ('error', 'warn')),
    success boolean not null,
    expectations integer not null,
    failed integer not null,
    rows_checked bigint,
    window_column text,
    window_start timestamptz,
    window_end timestamptz,
    skipped text[] not null default '{}',
    run_id text,
    data_docs text,
    seconds double precision,
    checked_at timestamptz not null default now()
);
create index check_runs_check_idx on quality.check_runs (asset_key, check_name, checked_at desc);
create index check_runs_window_idx on quality.check_runs (asset_key, check_name, window_end);
create index check_runs_checked_at_idx on quality.check_runs (checked_at);

-- One row per expectation per suite run: what was expected, what was observed, a few bad rows.
create table quality.check_results (
    id bigserial primary key,
    check_run_id bigint not null references quality.check_runs (id) on delete cascade,
    check_name text not null,
    asset_key text not null,
    expectation text not null,
    label text not null,
    column_name text,
    success boolean not null,
    severity text not null check (severity in ('error', 'warn')),
    observed_value jsonb,
    unexpected_count bigint,
    element_count bigint,
    sample jsonb not null default '[]'::jsonb,
    details jsonb not null default '{}'::jsonb,
    error text,
    run_id text,
    checked_at timestamptz not null default now()
);
create index check_results_run_idx on quality.check_results (check_run_id);
create index check_results_failed_idx on quality.check_results (asset_key, checked_at desc)
    where not success;
"""

# Checks read raw rows by load time (_ingested_at) and the trend checks by created_at over the
# last 8 days; without these they would scan millions of rows every cycle at S10.
RAW_INDEXES = """
create index if not exists dq_sessions_ingested_idx on raw.sessions (_ingested_at);
create index if not exists dq_sessions_created_idx on raw.sessions (created_at);
create index if not exists dq_session_requests_ingested_idx on raw.session_requests (_ingested_at);
create index if not exists dq_session_requests_created_idx on raw.session_requests (created_at);
create index if not exists dq_session_requests_updated_idx on raw.session_requests (updated_at);
create index if not exists dq_inbound_calls_ingested_idx on raw.inbound_calls (_ingested_at);
create index if not exists dq_inbound_calls_created_idx on raw.inbound_calls (created_at);
create index if not exists dq_inbound_calls_updated_idx on raw.inbound_calls (updated_at);
create index if not exists dq_customers_ingested_idx on raw.customers (_ingested_at);
create index if not exists dq_quarantine_run_idx on raw.quarantine (table_name, run_id);
"""


def upgrade() -> None:
    op.execute(QUALITY)
    op.execute(RAW_INDEXES)


def downgrade() -> None:
    op.execute(
        "drop index if exists raw.dq_sessions_ingested_idx, raw.dq_sessions_created_idx,"
        " raw.dq_session_requests_ingested_idx, raw.dq_session_requests_created_idx,"
        " raw.dq_session_requests_updated_idx, raw.dq_inbound_calls_ingested_idx,"
        " raw.dq_inbound_calls_created_idx, raw.dq_inbound_calls_updated_idx,"
        " raw.dq_customers_ingested_idx, raw.dq_quarantine_run_idx;"
    )
    op.execute("drop schema if exists quality cascade;")

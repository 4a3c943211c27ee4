"""Warehouse foundation: raw landing tables, quarantine, watermarks, app and ml schemas.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RAW = """
create schema if not exists raw;
create schema if not exists app;
create schema if not exists ml;

create table raw.customers (
    id bigint primary key,
    email text,
    full_name text,
    grade_level integer,
    goal text,
    goal_progress_pct integer,
    acquisition_channel text,
    status text not null,
    signed_up_at timestamptz,
    deleted_at timestamptz,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    _ingested_at timestamptz not null default now()
);
create table raw.tutors (
    id bigint primary key,
    email text,
    full_name text,
    status text not null,
    hourly_rate_cents integer,
    hired_at timestamptz,
    deleted_at timestamptz,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    _ingested_at timestamptz not null default now()
);
create table raw.subjects (
    id bigint primary key,
    name text not null,
    category text not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    _ingested_at timestamptz not null default now()
);
create table raw.tutor_subjects (
    id bigint primary key,
    tutor_id bigint not null,
    subject_id bigint not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    _ingested_at timestamptz not null default now()
);
create table raw.tutor_availabilities (
    id bigint primary key,
    tutor_id bigint not null,
    day_of_week integer not null,
    start_hour integer not null,
    end_hour integer not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    _ingested_at timestamptz not null default now()
);
create table raw.session_requests (
    id bigint primary key,
    customer_id bigint not null,
    subject_id bigint not null,
    requested_start_at timestamptz not null,
    status text not null,
    tutoring_session_id bigint,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    _ingested_at timestamptz not null default now()
);
create table raw.sessions (
    id bigint not null,
    customer_id bigint not null,
    tutor_id bigint not null,
    subject_id bigint not null,
    session_request_id bigint,
    scheduled_at timestamptz not null,
    duration_minutes integer not null,
    status text not null,
    cancelled_by text,
    no_show_by text,
    rating integer,
    is_first_session boolean not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    _ingested_at timestamptz not null default now(),
    primary key (id, created_at)
);
create table raw.inbound_calls (
    id bigint not null,
    customer_id bigint not null,
    reason_code text not null,
    channel text,
    duration_seconds integer,
    resolved boolean,
    called_at timestamptz not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    _ingested_at timestamptz not null default now(),
    primary key (id, created_at)
);
create index sessions_customer_idx on raw.sessions (customer_id, scheduled_at);
create index sessions_tutor_idx on raw.sessions (tutor_id, scheduled_at);
create index sessions_updated_idx on raw.sessions (updated_at);
create index inbound_calls_customer_idx on raw.inbound_calls (customer_id, called_at);

create table raw.quarantine (
    id bigserial primary key,
    table_name text not null,
    source_key text,
    reason text not null,
    payload jsonb not null,
    payload_hash text not null,
    run_id text,
    quarantined_at timestamptz not null default now(),
    unique (table_name, source_key, payload_hash)
);
create index quarantine_table_idx on raw.quarantine (table_name, quarantined_at);

-- One row per ingested table: the newest source updated_at already loaded. Advanced only in
-- the transaction that loads the rows.
create table raw.watermarks (
    table_name text primary key,
    watermark timestamptz not null,
    rows_loaded bigint not null default 0,
    updated_at timestamptz not null default now()
);
"""

APP = """
create table app.users (
    id bigserial primary key,
    username text not null unique,
    password_hash text not null,
    role text not null check (role in ('admin', 'operator', 'viewer')),
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    last_login_at timestamptz
);
create table app.alerts (
    id bigserial primary key,
    rule text not null,
    entity_type text not null,
    entity_id bigint,
    severity text not null check (severity in ('info', 'warning', 'critical')),
    title text not null,
    details jsonb not null default '{}'::jsonb,
    status text not null default 'open'
        check (status in ('open', 'acknowledged', 'resolved')),
    dedupe_key text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    resolved_at timestamptz
);
-- At most one live (unresolved) alert per dedupe key: re-evaluating a rule never duplicates.
create unique index alerts_live_dedupe_idx on app.alerts (dedupe_key) where status <> 'resolved';
create index alerts_status_idx on app.alerts (status, severity, created_at);
create table app.alert_events (
    id bigserial primary key,
    alert_id bigint not null references app.alerts (id),
    from_status text,
    to_status text not null,
    actor text not null,
    note text,
    at timestamptz not null default now()
);
create table app.notification_outbox (
    id bigserial primary key,
    channel text not null check (channel in ('email', 'slack')),
    subject text not null,
    body text not null,
    payload jsonb not null default '{}'::jsonb,
    alert_ids bigint[] not null default '{}',
    status text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
    attempts integer not null default 0,
    last_error text,
    created_at timestamptz not null default now(),
    sent_at timestamptz
);
create index outbox_pending_idx on app.notification_outbox (status, created_at);
create table app.audit_log (
    id bigserial primary key,
    username text,
    action text not null,
    details jsonb not null default '{}'::jsonb,
    at timestamptz not null default now()
);

create table ml.churn_scores (
    customer_id bigint not null,
    scored_at timestamptz not null,
    churn_probability double precision not null,
    top_factors jsonb not null default '[]'::jsonb,
    model_name text not null,
    model_version text not null,
    primary key (customer_id, scored_at)
);
create index churn_scores_latest_idx on ml.churn_scores (scored_at desc);
"""


def upgrade() -> None:
    op.execute(RAW)
    op.execute(APP)


def downgrade() -> None:
    op.execute("drop schema if exists app cascade; drop schema if exists ml cascade;")
    op.execute("drop schema if exists raw cascade;")

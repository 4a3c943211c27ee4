-- The marketplace's own database, shaped like a Rails app's: plural table names, bigint ids,
-- created_at/updated_at on every row, soft deletes via deleted_at, and (as in many Rails apps)
-- no foreign keys or check constraints -- which is why ingestion validates every row.
create table if not exists subjects (
    id bigserial primary key,
    name text not null,
    category text not null,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create table if not exists customers (
    id bigserial primary key,
    email text,
    full_name text,
    grade_level integer,
    goal text,
    goal_progress_pct integer,
    acquisition_channel text,
    status text not null default 'active',
    signed_up_at timestamptz,
    deleted_at timestamptz,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create table if not exists tutors (
    id bigserial primary key,
    email text,
    full_name text,
    status text not null default 'active',
    hourly_rate_cents integer,
    hired_at timestamptz,
    deleted_at timestamptz,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create table if not exists tutor_subjects (
    id bigserial primary key,
    tutor_id bigint,
    subject_id bigint,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

-- Weekly recurring availability: day_of_week 0=Monday..6=Sunday, hours in UTC, end exclusive.
create table if not exists tutor_availabilities (
    id bigserial primary key,
    tutor_id bigint,
    day_of_week integer,
    start_hour integer,
    end_hour integer,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

-- status: pending | matched | unfilled | cancelled
create table if not exists session_requests (
    id bigserial primary key,
    customer_id bigint,
    subject_id bigint,
    requested_start_at timestamptz,
    status text,
    tutoring_session_id bigint,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

-- status: scheduled | completed | cancelled | no_show
-- cancelled_by / no_show_by: customer | tutor (null otherwise); rating 1..5 or null.
create table if not exists tutoring_sessions (
    id bigserial primary key,
    customer_id bigint,
    tutor_id bigint,
    subject_id bigint,
    session_request_id bigint,
    scheduled_at timestamptz,
    duration_minutes integer,
    status text,
    cancelled_by text,
    no_show_by text,
    rating integer,
    is_first_session boolean,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

-- The support system's store, served only through the support API (simulator/support_api.py).
create schema if not exists support;
-- reason_code: billing | scheduling | tutor_quality | technical | cancellation_request | other
create table if not exists support.inbound_calls (
    id bigserial primary key,
    customer_id bigint,
    reason_code text,
    channel text,
    duration_seconds integer,
    resolved boolean,
    called_at timestamptz,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

-- Ground truth that the pipeline never reads: used only to judge scores, models and alerts.
create schema if not exists truth;
create table if not exists truth.customer_outcomes (
    customer_id bigint primary key,
    churned boolean not null,
    churn_cause text,
    churned_at timestamptz
);
create table if not exists truth.tutor_quality (
    tutor_id bigint primary key,
    quality double precision not null,
    no_show_rate double precision not null
);
create table if not exists truth.scenarios (
    id bigserial primary key,
    scenario text not null,
    params jsonb not null default '{}'::jsonb,
    started_at timestamptz not null
);
-- The latent traits the simulator's live mode needs to keep each customer on the same model.
create table if not exists truth.customer_latent (
    customer_id bigint primary key,
    rate_per_week double precision not null,
    main_subject_id bigint not null,
    second_subject_id bigint,
    primary_tutor_id bigint,
    second_tutor_id bigint,
    utc_offset integer not null,
    pref_local_hour integer not null,
    switch_propensity double precision not null,
    support_propensity double precision not null,
    learning_rate double precision not null,
    churn_at timestamptz not null,
    churn_cause text not null,
    decline_days double precision not null
);
create table if not exists truth.generation (
    id bigserial primary key,
    seed integer not null,
    scale integer not null,
    days integer not null,
    history_end timestamptz not null,
    generated_at timestamptz not null default now()
);
-- sessions per week per unit of a customer's latent rate (live mode keeps new customers on it)
alter table truth.generation add column if not exists rate_scale double precision;

create index if not exists customers_updated_at_idx on customers (updated_at, id);
create index if not exists tutors_updated_at_idx on tutors (updated_at, id);
create index if not exists subjects_updated_at_idx on subjects (updated_at, id);
create index if not exists tutor_subjects_updated_at_idx on tutor_subjects (updated_at, id);
create index if not exists tutor_availabilities_updated_at_idx on tutor_availabilities (updated_at, id);
create index if not exists session_requests_updated_at_idx on session_requests (updated_at, id);
create index if not exists tutoring_sessions_updated_at_idx on tutoring_sessions (updated_at, id);
create index if not exists inbound_calls_updated_at_idx on support.inbound_calls (updated_at, id);

-- What the simulator's live mode and scenarios look up on every tick.
create index if not exists tutoring_sessions_open_idx on tutoring_sessions (scheduled_at)
    where status = 'scheduled';
create index if not exists tutoring_sessions_tutor_idx on tutoring_sessions (tutor_id, scheduled_at);
create index if not exists session_requests_pending_idx on session_requests (created_at)
    where status = 'pending';
create index if not exists inbound_calls_open_idx on support.inbound_calls (created_at)
    where not resolved;

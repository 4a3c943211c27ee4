"""Alert center: alert lifecycle, silences, rule state, outbox retries by age, recommendations,
and the churn model's monitoring history.

The semantics follow Alertmanager and PagerDuty: a dedup key (rule + entity) holds at most one
live alert, a persisting condition adds occurrences to it, acknowledging stops repeats, a
resolved or dismissed alert never re-opens (a new occurrence is a new alert). The outbox gives
up by age, not by count, and each row carries a deterministic Message-ID so a receiver can
de-duplicate a retry.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ALERTS = """
alter table app.alerts drop constraint if exists alerts_status_check;
alter table app.alerts add constraint alerts_status_check
    check (status in ('open', 'acknowledged', 'resolved', 'dismissed'));
drop index if exists app.alerts_live_dedupe_idx;
-- At most one live alert per dedup key; resolved and dismissed alerts are history.
create unique index alerts_live_dedupe_idx on app.alerts (dedupe_key)
    where status in ('open', 'acknowledged');
alter table app.alerts
    add column if not exists occurrences integer not null default 1,
    add column if not exists first_seen_at timestamptz not null default now(),
    add column if not exists last_seen_at timestamptz not null default now(),
    add column if not exists acknowledged_by text,
    add column if not exists acknowledged_at timestamptz,
    add column if not exists ack_comment text,
    add column if not exists closed_by text,
    add column if not exists last_notified_at timestamptz,
    add column if not exists notify_count integer not null default 0,
    -- Alerts a rule raised together share a group key (Alertmanager group_by).
    add column if not exists group_key text,
    -- The one alert a rule raises for pre-existing state on its first evaluation.
    add column if not exists is_summary boolean not null default false,
    -- Why a live alert was not notified (silence id or inhibiting alert id), for the UI.
    add column if not exists suppressed_by text;
create index if not exists alerts_rule_status_idx on app.alerts (rule, status, last_seen_at desc);
create index if not exists alerts_entity_idx on app.alerts (entity_type, entity_id, created_at desc);

alter table app.alert_events
    add column if not exists actor_type text not null default 'system'
        check (actor_type in ('user', 'system', 'automation')),
    add column if not exists kind text not null default 'status'
        check (kind in ('status', 'occurrence', 'notified', 'comment', 'reopened'));
create index if not exists alert_events_alert_idx on app.alert_events (alert_id, at);

-- A silence mutes notifications of alerts matching every given field until it ends.
create table if not exists app.silences (
    id bigserial primary key,
    rule text,
    entity_type text,
    entity_id bigint,
    severity text check (severity in ('info', 'warning', 'critical')),
    created_by text not null,
    comment text not null check (length(trim(comment)) > 0),
    starts_at timestamptz not null default now(),
    ends_at timestamptz not null,
    expired_by text,
    created_at timestamptz not null default now(),
    check (ends_at > starts_at),
    check (coalesce(rule, entity_type, entity_id::text, severity) is not null)
);
create index if not exists silences_active_idx on app.silences (ends_at);

-- Per-rule evaluation state: the first evaluation over existing state sets a baseline,
-- and the watchdog reads when the alert sensors last completed a tick.
create table if not exists app.alert_rule_state (
    rule text primary key,
    baseline_at timestamptz,
    last_evaluated_at timestamptz,
    last_success_at timestamptz,
    last_error text,
    state jsonb not null default '{}'::jsonb
);
"""

OUTBOX = """
alter table app.notification_outbox drop constraint if exists notification_outbox_status_check;
alter table app.notification_outbox add constraint notification_outbox_status_check
    check (status in ('pending', 'sending', 'sent', 'failed', 'given_up', 'digest'));
alter table app.notification_outbox
    add column if not exists next_attempt_at timestamptz not null default now(),
    add column if not exists message_id text,
    add column if not exists severity text check (severity in ('info', 'warning', 'critical')),
    add column if not exists kind text not null default 'alert'
        check (kind in ('alert', 'resolved', 'repeat', 'digest', 'summary', 'pipeline')),
    add column if not exists claimed_at timestamptz,
    add column if not exists given_up_at timestamptz;
drop index if exists app.outbox_pending_idx;
create index if not exists outbox_due_idx on app.notification_outbox (status, next_attempt_at);
"""

RECOMMENDATIONS = """
create table if not exists app.recommendations (
    id bigserial primary key,
    entity_type text not null check (entity_type in ('customer', 'tutor', 'subject')),
    entity_id bigint not null,
    rec_type text not null,
    reason_code text not null,
    reason text not null,
    action text not null,
    priority double precision not null default 0,
    owner_role text not null default 'operator' check (owner_role in ('admin', 'operator')),
    status text not null default 'active'
        check (status in ('active', 'accepted', 'dismissed', 'snoozed', 'expired', 'cleared')),
    details jsonb not null default '{}'::jsonb,
    source_alert_id bigint references app.alerts (id),
    due_at timestamptz,
    expires_at timestamptz,
    snoozed_until timestamptz,
    acted_by text,
    acted_at timestamptz,
    comment text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
-- No second open recommendation for the same (entity, type, reason).
create unique index if not exists recommendations_open_idx
    on app.recommendations (entity_type, entity_id, rec_type, reason_code)
    where status in ('active', 'snoozed');
create index if not exists recommendations_status_idx
    on app.recommendations (status, priority desc, created_at desc);
create index if not exists recommendations_entity_idx
    on app.recommendations (entity_type, entity_id, created_at desc);
create table if not exists app.recommendation_events (
    id bigserial primary key,
    recommendation_id bigint not null references app.recommendations (id),
    from_status text,
    to_status text not null,
    actor text not null,
    actor_type text not null default 'system' check (actor_type in ('user', 'system', 'automation')),
    comment text,
    at timestamptz not null default now()
);
create index if not exists recommendation_events_rec_idx
    on app.recommendation_events (recommendation_id, at);
"""

CHURN_MONITORING = """
-- Feature drift of the churn model: PSI per feature per day against the training sample.
create table if not exists ml.churn_drift (
    monitored_date date not null,
    model_name text not null,
    model_version text not null,
    feature text not null,
    psi double precision not null,
    is_drifted boolean not null,
    threshold double precision not null,
    computed_at timestamptz not null default now(),
    primary key (monitored_date, model_name, feature)
);
-- Realized accuracy of past scores once their outcome window has closed.
create table if not exists ml.churn_accuracy (
    scored_date date not null,
    model_name text not null,
    model_version text not null,
    customers integer not null,
    churned integer not null,
    roc_auc double precision,
    recall double precision,
    precision double precision,
    threshold double precision,
    computed_at timestamptz not null default now(),
    primary key (scored_date, model_name, model_version)
);
"""


def upgrade() -> None:
    op.execute(ALERTS)
    op.execute(OUTBOX)
    op.execute(RECOMMENDATIONS)
    op.execute(CHURN_MONITORING)


def downgrade() -> None:
    op.execute(
        """
        drop table if exists ml.churn_accuracy;
        drop table if exists ml.churn_drift;
        drop table if exists app.recommendation_events;
        drop table if exists app.recommendations;
        drop table if exists app.alert_rule_state;
        drop table if exists app.silences;
        """
    )

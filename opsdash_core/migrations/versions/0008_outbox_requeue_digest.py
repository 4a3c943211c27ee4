"""Outbox: a requeue restarts the give-up clock, digest rows fold into one daily email, and
rows that the old count-based retry marked `failed` become `given_up` so they are surfaced and
can be re-driven.

Revision ID: 0008
Revises: 0005
"""

from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = """
alter table app.notification_outbox drop constraint if exists notification_outbox_status_check;
alter table app.notification_outbox add constraint notification_outbox_status_check
    check (status in ('pending', 'sending', 'sent', 'failed', 'given_up', 'digest', 'folded'));
alter table app.notification_outbox
    -- Age for giving up counts from here once an operator re-drove the row.
    add column if not exists requeued_at timestamptz,
    -- The digest email a 'folded' row went out in.
    add column if not exists digest_id bigint references app.notification_outbox (id);
-- Rows the old retry-by-count gave up on were never delivered: surface them like any other.
update app.notification_outbox
set status = 'given_up', given_up_at = coalesce(given_up_at, now())
where status = 'failed' and coalesce(last_error, '') not like 'skipped:%';
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(
        """
        update app.notification_outbox set status = 'sent' where status = 'folded';
        alter table app.notification_outbox drop column if exists digest_id;
        alter table app.notification_outbox drop column if exists requeued_at;
        alter table app.notification_outbox drop constraint notification_outbox_status_check;
        alter table app.notification_outbox add constraint notification_outbox_status_check
            check (status in ('pending', 'sending', 'sent', 'failed', 'given_up', 'digest'));
        """
    )

"""`raw.try_timestamptz(text)`: a quarantined row's own timestamp, or null when it is malformed.

The `watermark_stuck` alert asks whether rows newer than everything loaded keep being
quarantined. When each row was quarantined is not that: the first load of a quiet table meets
its old bad rows long after its newest valid row (its watermark), and read that way the table
looked stuck for ever. The row's own `updated_at` is in its payload, as the source sent it -
which may be exactly why it was quarantined, so reading it must not fail the rule's query.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

UPGRADE = """
create or replace function raw.try_timestamptz(value text) returns timestamptz
language plpgsql stable parallel safe as $$
begin
    return value::timestamptz;
exception when others then
    return null;
end
$$;
comment on function raw.try_timestamptz(text) is
    'The text as a timestamptz, or null when it is not one (a quarantined payload''s field).';
"""

DOWNGRADE = "drop function if exists raw.try_timestamptz(text);"


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)

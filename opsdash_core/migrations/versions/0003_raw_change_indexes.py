"""Indexes the incremental dbt models use to find changed raw rows without full scans.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create index if not exists customers_updated_idx on raw.customers (updated_at);
        create index if not exists inbound_calls_called_idx on raw.inbound_calls (called_at);
        create index if not exists session_requests_start_idx
            on raw.session_requests (requested_start_at);
        """
    )


def downgrade() -> None:
    op.execute(
        "drop index if exists raw.customers_updated_idx;"
        " drop index if exists raw.inbound_calls_called_idx;"
        " drop index if exists raw.session_requests_start_idx;"
    )

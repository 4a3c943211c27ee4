"""Merge point: the outbox (0008) and app-session (0011) branches, written side by side on
top of the alert-center schema (0005), meet here so the history has one head again.

Revision ID: 0012
Revises: 0008, 0011
"""

revision = "0012"
down_revision = ("0008", "0011")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: both branches are already applied."""


def downgrade() -> None:
    """Nothing to undo here; each branch's own downgrade does that."""

"""App sessions in PostgreSQL: revocation that survives restarts and Redis, and idle expiry.

One row per issued session token (its `jti`). Logout and idle expiry set `revoked_at`; a token
without a live row is refused, so a revocation can no longer be lost with Redis keys or a
process's memory (security review 2026-11-30, finding 9). `last_seen_at` is what the idle
timeout compares against, across reloads and app processes. Rows are pruned a day after
their token expired.

Revision ID: 0011
Revises: 0005
"""

from alembic import op

revision = "0011"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table if not exists app.user_sessions (
            jti text primary key,
            username text not null,
            issued_at timestamptz not null default now(),
            expires_at timestamptz not null,
            last_seen_at timestamptz not null default now(),
            revoked_at timestamptz,
            revoked_reason text
        );
        create index if not exists user_sessions_expires_idx on app.user_sessions (expires_at);
        create index if not exists user_sessions_username_idx on app.user_sessions (username)
            where revoked_at is null;
        """
    )


def downgrade() -> None:
    op.execute("drop table if exists app.user_sessions")

"""The app role reads of `raw` only the load log.

0013 let `opsdash_app` (Streamlit) read every raw table, though the app reads none but
`raw.watermarks` (tests/unit/test_app_sql_reads_no_raw.py): a leaked app password or a bug in a
page could read every customer's raw record, their attribute history (0014) and the full
payload of every quarantined row. This revision takes that away, now and for raw tables created
later:

- SELECT stays only on `raw.watermarks` (the Models & data page's freshness of each raw table);
- on the other raw tables the app keeps REFERENCES, which reads nothing: that page lists the
  raw tables through `information_schema.tables`, which shows only tables the role holds some
  privilege on, and REFERENCES is unusable here (the role may create no table that could
  reference them; a temporary table may not).

`staging` and `intermediate` stay readable: the customer page shows a customer's support calls
from `staging.stg_support__inbound_calls` and sessions from
`intermediate.int_sessions_deduplicated`.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UPGRADE = """
revoke select on all tables in schema raw from opsdash_app;
grant select on raw.watermarks to opsdash_app;
grant references on all tables in schema raw to opsdash_app;
alter default privileges in schema raw revoke select on tables from opsdash_app;
alter default privileges in schema raw grant references on tables to opsdash_app;
"""

DOWNGRADE = """
revoke references on all tables in schema raw from opsdash_app;
alter default privileges in schema raw revoke references on tables from opsdash_app;
grant select on all tables in schema raw to opsdash_app;
alter default privileges in schema raw grant select on tables to opsdash_app;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)

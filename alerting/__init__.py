"""Alert rules over the marts: plain SQL and Python on a connection, no Dagster.

The Dagster sensors in `orchestration/defs/alerting/` call these; tests and scripts can call them
the same way with any psycopg connection.
"""

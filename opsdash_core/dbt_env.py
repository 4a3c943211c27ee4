"""Environment for dbt: profiles.yml reads only these variables (see dbt_project/profiles.yml)."""

from __future__ import annotations

from opsdash_core.settings import Settings


def dbt_env(s: Settings) -> dict[str, str]:
    parts = s.libpq_parts(s.warehouse_url)
    return {
        "OPSDASH_DBT_HOST": parts["host"],
        "OPSDASH_DBT_PORT": parts["port"],
        "OPSDASH_DBT_USER": parts["user"],
        "OPSDASH_DBT_PASSWORD": parts["password"],
        "OPSDASH_DBT_DBNAME": parts["dbname"],
        # `set role` after connecting (empty = none): the owner of the dbt schemas.
        "OPSDASH_DBT_ROLE": s.dbt_role,
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }

"""Apply the warehouse schema: Alembic migrations, then the time-series layout."""

from __future__ import annotations

import psycopg

from opsdash_core.settings import PROJECT_ROOT
from opsdash_core.timescale import apply_time_series_layout


def upgrade(warehouse_url: str) -> str:
    """Bring `warehouse_url` to the latest migration (a no-op at head); returns the layout used."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "opsdash_core" / "migrations"))
    cfg.set_main_option("sqlalchemy.url", warehouse_url)
    command.upgrade(cfg, "heads")  # every head, should a branch land before its merge
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        return apply_time_series_layout(conn)

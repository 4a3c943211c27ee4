"""Alembic environment: migrations run against the warehouse URL from settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from opsdash_core.migrations import ownership
from opsdash_core.settings import get_settings


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url") or get_settings().warehouse_url
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def run_migrations_online() -> None:
    engine = create_engine(_url())
    with engine.connect() as connection:
        context.configure(connection=connection, version_table_schema="public")
        with context.begin_transaction():
            context.run_migrations()
            # Tables a migration added where a component must own them (ownership.py).
            for statement in ownership.statements():
                context.execute(statement)
    engine.dispose()


run_migrations_online()

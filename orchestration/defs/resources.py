"""Resources shared by every domain. Empty fields fall back to the settings module, lazily,
so a deployment differs only by environment variables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg

from opsdash_core.db import connect
from opsdash_core.dbt_env import dbt_env
from opsdash_core.settings import get_settings


class WarehouseResource(dg.ConfigurableResource):
    """The `ops` warehouse (PostgreSQL/TimescaleDB)."""

    url: str = ""

    def resolved_url(self) -> str:
        return self.url or get_settings().warehouse_url

    @contextmanager
    def connect(self, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
        with connect(self.resolved_url(), autocommit=autocommit) as conn:
            yield conn

    def dbt_env(self) -> dict[str, str]:
        """The variables `dbt_project/profiles.yml` reads, pointing dbt at this warehouse."""
        settings = get_settings()
        return dbt_env(settings.model_copy(update={"warehouse_url": self.resolved_url()}))


class SourceDbResource(dg.ConfigurableResource):
    """The marketplace's own (Rails) database, read-only for us."""

    url: str = ""

    def resolved_url(self) -> str:
        return self.url or get_settings().source_url

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        with connect(self.resolved_url()) as conn:
            conn.read_only = True
            yield conn


class MlflowResource(dg.ConfigurableResource):
    """Where models are tracked and registered."""

    tracking_uri: str = ""

    def resolved_uri(self) -> str:
        return self.tracking_uri or get_settings().mlflow_tracking_uri


def shared_resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse": WarehouseResource(),
        "source_db": SourceDbResource(),
        "mlflow": MlflowResource(),
    }

"""Shared fixtures: scratch databases on the test cluster that `make test` starts."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from opsdash_core.dbt_env import dbt_env
from opsdash_core.migrate import upgrade as migrate_url
from opsdash_core.settings import PROJECT_ROOT, get_settings


def pytest_sessionstart(session: pytest.Session) -> None:
    """The code location reads dbt's manifest at import: on a fresh checkout, parse the project
    first (no database needed) so `pytest tests/unit` collects without any other step."""
    project = PROJECT_ROOT / "dbt_project"
    if (project / "target" / "manifest.json").exists():
        return
    dbt = Path(sys.executable).parent / "dbt"
    subprocess.run(
        [dbt, "parse", "--quiet", "--project-dir", project, "--profiles-dir", project],
        check=True,
        env={**os.environ, **dbt_env(get_settings())},
    )


def _with_db(url: str, dbname: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture
def scratch_db() -> Iterator[Callable[[str], str]]:
    """Factory: create an empty database with a unique name, dropped after the test."""
    yield from _scratch_factory()


@pytest.fixture(scope="module")
def module_scratch_db() -> Iterator[Callable[[str], str]]:
    """The same factory for a module's read-only tests that share one expensive set-up."""
    yield from _scratch_factory()


def _scratch_factory() -> Iterator[Callable[[str], str]]:
    created: list[str] = []
    admin = _with_db(get_settings().warehouse_url, "postgres")

    def make(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        created.append(name)
        return _with_db(get_settings().warehouse_url, name)

    yield make
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in created:
            conn.execute(f'drop database if exists "{name}" with (force)')


def apply_source_schema(url: str) -> None:
    ddl = Path(PROJECT_ROOT / "simulator" / "schema.sql").read_text()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ddl)


@pytest.fixture
def warehouse_url(scratch_db: Callable[[str], str]) -> str:
    """A fresh warehouse database at the latest migration."""
    url = scratch_db("wh")
    migrate_url(url)
    return url


@pytest.fixture(scope="module")
def module_warehouse_url(module_scratch_db: Callable[[str], str]) -> str:
    """A warehouse at the latest migration shared by one module (its tests must not write)."""
    url = module_scratch_db("wh")
    migrate_url(url)
    return url


@pytest.fixture
def source_url(scratch_db: Callable[[str], str]) -> str:
    """A fresh, empty marketplace database with the Rails-style schema."""
    url = scratch_db("src")
    apply_source_schema(url)
    return url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end tests restart services; run them after every other tier."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)

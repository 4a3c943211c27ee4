"""The PostgreSQL settings `make up` writes for a server that has TimescaleDB: the extension
preloaded and enough worker processes for its policy jobs next to parallel queries."""

from __future__ import annotations

import pytest

from opsdash_core.settings import get_settings
from opsdash_stack.services import postgres


def _conf(monkeypatch: pytest.MonkeyPatch, installed: bool) -> dict[str, str]:
    monkeypatch.setattr(postgres, "_timescale_installed", lambda: installed)
    lines = postgres._pg_conf(get_settings()).splitlines()
    pairs = (line.split(" = ", 1) for line in lines if " = " in line and not line.startswith("#"))
    return {name: value for name, value in pairs}


def test_timescaledb_server_gets_its_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = _conf(monkeypatch, installed=True)
    assert conf["shared_preload_libraries"] == "'timescaledb'"
    background = int(conf["timescaledb.max_background_workers"])
    assert background == 8
    # TimescaleDB's rule: 3 + its background workers + max_parallel_workers (default 8).
    assert int(conf["max_worker_processes"]) == 3 + background + 8


def test_plain_server_keeps_postgresql_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = _conf(monkeypatch, installed=False)
    assert not {"shared_preload_libraries", "max_worker_processes"} & set(conf)
    assert not any(name.startswith("timescaledb.") for name in conf)

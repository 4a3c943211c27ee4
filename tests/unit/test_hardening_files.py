"""OPSDASH_HOME is made private on every `opsdash up` (what older releases left readable
included), and where the PostgreSQL cluster lives for root and for a normal user."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from opsdash_core.settings import Settings
from opsdash_stack import lifecycle
from opsdash_stack.services import postgres


def _settings(home: Path) -> Settings:
    return Settings(_env_file=None, opsdash_home=home)  # type: ignore[call-arg]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_secure_home_makes_the_home_and_its_trees_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    outside.chmod(0o644)
    for rel in ("logs/mlflow.log", "outbox/mail/1.eml", "mlflow-artifacts/1/m/MLmodel"):
        path = home / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        path.chmod(0o644)
    (home / "outbox" / "mail").chmod(0o755)
    (home / "logs" / "postgres.log").symlink_to(outside)
    tmp_path.chmod(0o755)

    lifecycle.secure_home(_settings(home))

    assert _mode(home) == 0o700
    assert _mode(home / "outbox" / "mail") == 0o700
    for rel in ("logs/mlflow.log", "outbox/mail/1.eml", "mlflow-artifacts/1/m/MLmodel"):
        assert _mode(home / rel) == 0o600, rel
    assert _mode(outside) == 0o644  # a symlink's target is not ours to change
    assert _mode(tmp_path) == 0o755  # nor is anything above the home


def test_secure_home_creates_a_missing_home_0700(tmp_path: Path) -> None:
    home = tmp_path / "a" / "home"
    lifecycle.secure_home(_settings(home))
    assert _mode(home) == 0o700


def test_services_start_under_umask_077(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def fake_start(_s: Settings, _svc: object) -> None:
        seen.append(os.umask(0o077))
        os.umask(seen[-1])

    monkeypatch.setattr(lifecycle, "start_service", fake_start)
    before = os.umask(0o022)
    try:
        lifecycle.start_services(_settings(tmp_path), [object(), object()])  # type: ignore[list-item]
        assert os.umask(0o022) == 0o022  # restored afterwards
    finally:
        os.umask(before)
    assert seen == [0o077, 0o077]


def test_cluster_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = _settings(tmp_path / ".local")
    monkeypatch.setattr(postgres, "_as_root", lambda: False)
    assert postgres.data_dir(s) == tmp_path / ".local" / "pg" / "data"
    assert postgres.server_log(s) == s.log_dir / "postgres.log"
    monkeypatch.setattr(postgres, "_as_root", lambda: True)
    root_dir = postgres.cluster_dir(s)
    assert root_dir.parent == postgres.ROOT_CLUSTERS
    assert root_dir.name.startswith("local-")
    assert postgres.server_log(s).parent == root_dir
    other = postgres.cluster_dir(_settings(tmp_path / "other" / ".local"))
    assert other != root_dir  # one cluster per home path


def test_no_code_opens_up_parent_directories() -> None:
    source = Path(postgres.__file__).read_text()
    assert "_ensure_traversable" not in source
    assert ".parents" not in source

"""Files of the test stack as `opsdash up --infra-only` left them (scripts/test.sh): the home
is 0700 and nothing in it is readable by other users; PostgreSQL runs without entering it and
without any directory above the project having been opened up for it."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import psycopg
import pytest

from opsdash_core.settings import Settings, get_settings
from opsdash_stack.services import postgres

pytestmark = pytest.mark.integration


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_the_home_and_what_infra_up_wrote_are_private() -> None:
    s = get_settings()
    assert _mode(s.opsdash_home) == 0o700
    for directory in (s.log_dir, s.run_dir, s.opsdash_home / "redis"):
        assert _mode(directory) == 0o700, directory
    written = [p for p in s.opsdash_home.rglob("*") if p.is_file() and not p.is_symlink()]
    assert any(p.name == "redis.log" for p in written)
    loose = [str(p) for p in written if _mode(p) & 0o077]
    assert loose == []


def test_postgres_runs_without_entering_the_home() -> None:
    s = get_settings()
    with psycopg.connect(s.warehouse_url) as conn:
        row = conn.execute("show data_directory").fetchone()
    assert row is not None
    data = Path(row[0])
    assert data == postgres.data_dir(s)
    assert _mode(data) == 0o700
    if os.geteuid() != 0:
        assert data.is_relative_to(s.opsdash_home)  # the cluster runs as the invoking user
        return
    # As root the server runs as `postgres`, from a directory of its own ...
    assert data.is_relative_to(postgres.ROOT_CLUSTERS)
    assert data.stat().st_uid == data.parent.stat().st_uid != 0
    # ... and that user cannot even enter the home.
    probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(s.opsdash_home)])
    assert probe.returncode != 0


def test_initdb_reads_the_password_from_a_file_made_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh cluster (a home of its own, as a first `make up` has): the superuser's password
    reaches initdb in a file private from its creation, owned by the cluster's user, gone once
    initdb is done, and never on initdb's command line."""
    password = "initdb-secret-Tq27"
    home = tmp_path / "home"
    s = Settings(  # type: ignore[call-arg]
        _env_file=None,
        opsdash_home=home,
        OPSDASH_PG_PASSWORD=password,
    )
    seen: list[tuple[int, int, list[str]]] = []
    real_run = postgres._pg_run

    def spy(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        if args[0] == "initdb":
            pwfile = Path(args[args.index("--pwfile") + 1])
            info = pwfile.stat()
            seen.append((stat.S_IMODE(info.st_mode), info.st_uid, args))
            return real_run(args, **kw)
        raise _StopAfterInitdbError  # initdb has run: the server need not start

    monkeypatch.setattr(postgres, "_pg_run", spy)
    try:
        with pytest.raises(_StopAfterInitdbError):
            postgres.start(s)
        [(mode, uid, argv)] = seen
        assert mode == 0o600
        cluster_user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        assert uid == pwd.getpwnam(cluster_user).pw_uid
        assert password not in " ".join(argv)
        assert (postgres.data_dir(s) / "PG_VERSION").exists()  # initdb did read it
        assert not (postgres.cluster_dir(s) / "pwfile").exists()
    finally:
        shutil.rmtree(postgres.cluster_dir(s), ignore_errors=True)


class _StopAfterInitdbError(Exception):
    """Ends `postgres.start` right after initdb."""

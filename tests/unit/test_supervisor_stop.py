"""Starting and stopping services: a stop reaches every process a service started, even one
that ignores SIGTERM; a service that dies on start is reported at once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from opsdash_core.settings import Settings
from opsdash_stack.probes import ServiceError
from opsdash_stack.supervisor import (
    Service,
    group_members,
    pid_alive,
    pidfile,
    read_pid,
    start_service,
    stop_service,
)

# A leader that exits on SIGTERM and a child that ignores it (as Dagster's code server did
# after its webserver stopped); the child writes its pid so the test can follow it.
SCRIPT = """
sh -c 'trap "" TERM; echo $$ > "$1"; while :; do sleep 0.2; done' child "$1" &
trap 'exit 0' TERM
while :; do sleep 0.2; done
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("OPSDASH_HOME", str(tmp_path))
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_stop_kills_a_child_that_ignores_sigterm(settings: Settings, tmp_path: Path) -> None:
    child_file = tmp_path / "child.pid"
    svc = Service("stubborn", ["sh", "-c", SCRIPT, "leader", str(child_file)], None, None)
    start_service(settings, svc)
    leader = read_pid(pidfile(settings, "stubborn"))
    assert leader is not None
    deadline = time.monotonic() + 10
    while not child_file.exists() or not child_file.read_text().strip():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    child = int(child_file.read_text())
    assert child in group_members(leader)

    started = time.monotonic()
    stop_service(settings, "stubborn", timeout=2)
    assert time.monotonic() - started < 10
    assert not pid_alive(leader)
    assert not Path(f"/proc/{child}").exists() or _zombie(child)
    assert group_members(leader) == set()
    assert not pidfile(settings, "stubborn").exists()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_stale_pid_file_is_removed_and_nothing_signalled(settings: Settings) -> None:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    path = pidfile(settings, "gone")
    path.write_text("999999999")  # no such process
    stop_service(settings, "gone")
    assert not path.exists()


def test_a_service_that_dies_on_start_fails_at_once_with_its_log(settings: Settings) -> None:
    svc = Service(
        "dies",
        ["sh", "-c", "echo 'bad setting: FOO'; exit 3"],
        None,
        "http://127.0.0.1:9/health",  # nothing answers there
        timeout=60,
    )
    started = time.monotonic()
    with pytest.raises(ServiceError, match=r"(?s)dies exited .*bad setting: FOO"):
        start_service(settings, svc)
    assert time.monotonic() - started < 10  # not the 60 s timeout

"""The Host/Origin allow-list in front of the Dagster UI, and that `opsdash up` starts the UI
through it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from opsdash_core.settings import Settings
from opsdash_stack.dagster_ui import (
    HostGuard,
    Message,
    Receive,
    Scope,
    Send,
    _split_argv,
    host_allowed,
    loopback_hosts,
    origin_allowed,
)
from opsdash_stack.services import dagster

ALLOWED = loopback_hosts(3000, ["Dagster.Ops.Internal:443", " "])


def test_the_allow_list_is_loopback_plus_configured_names() -> None:
    assert {"127.0.0.1:3000", "localhost:3000", "dagster.ops.internal:443"} == ALLOWED


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:3000", True),
        ("LOCALHOST:3000", True),
        ("dagster.ops.internal:443", True),
        ("evil.example:3000", False),
        ("127.0.0.1:3001", False),
        ("127.0.0.1", False),
        ("127.0.0.1:3000.evil.example", False),
        ("", False),
        (None, False),
    ],
)
def test_host(host: str | None, ok: bool) -> None:
    assert host_allowed(host, ALLOWED) is ok


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        (None, True),
        ("http://127.0.0.1:3000", True),
        ("https://dagster.ops.internal:443", True),
        ("http://evil.example:3000", False),
        ("http://127.0.0.1:3000.evil.example", False),
        ("null", False),
        ("127.0.0.1:3000", False),
    ],
)
def test_origin(origin: str | None, ok: bool) -> None:
    assert origin_allowed(origin, ALLOWED) is ok


def _call(scope_type: str, headers: dict[str, str]) -> tuple[list[Message], bool]:
    reached = False
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal reached
        reached = True

    async def receive() -> Message:
        return {"type": f"{scope_type}.request"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": scope_type,
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(HostGuard(app, ALLOWED)(scope, receive, send))
    return sent, reached


def test_guard_passes_own_names_and_refuses_others() -> None:
    assert _call("http", {"host": "127.0.0.1:3000"}) == ([], True)
    sent, reached = _call("http", {"host": "evil.example:3000"})
    assert not reached
    assert sent[0]["status"] == 403
    sent, reached = _call("http", {"host": "127.0.0.1:3000", "origin": "http://evil.example"})
    assert not reached
    assert sent[0]["status"] == 403
    sent, reached = _call("websocket", {"host": "evil.example:3000"})
    assert not reached
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]
    assert _call("lifespan", {}) == ([], True)


def test_guard_needs_an_allow_list() -> None:
    with pytest.raises(ValueError, match="allowed host"):
        HostGuard(lambda *a: asyncio.sleep(0), frozenset())


def test_entry_point_argv() -> None:
    allowed, rest = _split_argv(["--allowed-hosts", "a:1,B:2", "--", "-p", "1"])
    assert allowed == {"a:1", "b:2"}
    assert rest == ["-p", "1"]
    for bad in ([], ["-p", "1"], ["--allowed-hosts", " , "]):
        with pytest.raises(SystemExit):
            _split_argv(bad)


def test_make_up_starts_the_ui_through_the_guard(tmp_path: Path) -> None:
    s = Settings(_env_file=None, opsdash_home=tmp_path, DAGSTER_PORT=3000)  # type: ignore[call-arg]
    argv = dagster.webserver(s).argv
    assert argv[1:4] == ["-m", "opsdash_stack.dagster_ui", "--allowed-hosts"]
    assert argv[4].split(",") == ["127.0.0.1:3000", "localhost:3000"]
    assert argv[argv.index("-h") + 1] == "127.0.0.1"

"""The Dagster webserver, answering only requests addressed to its own host names.

Dagster's UI has no login, and its GraphQL endpoint launches, terminates and deletes runs. A
web page open in a browser on this machine could reach it by DNS rebinding (its name resolves
to 127.0.0.1 after the page loaded), so the browser would send `Host: evil.example:3000` and,
on writes, `Origin: http://evil.example:3000`. This entry point runs the unchanged
`dagster-webserver` CLI with its ASGI app wrapped in `HostGuard`, which refuses (HTTP 403, or a
closed websocket) every request whose Host is not on the allow-list or whose Origin, when the
browser sends one, is not one of those hosts.

    python -m opsdash_stack.dagster_ui --allowed-hosts 127.0.0.1:3000,localhost:3000 -- \
        -h 127.0.0.1 -p 3000 -w workspace.yaml

It is not authentication: any local user can still send the right Host. For more than one
trusted operator on the host, put an authenticating reverse proxy in front (README, Security).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# What the guard patches in dagster-webserver's CLI module: the one function that builds the app.
_APP_FACTORY = "create_app_from_workspace_process_context"


def loopback_hosts(port: int, extra: Iterable[str] = ()) -> frozenset[str]:
    """`host:port` values a browser sends for this server: the loopback names plus `extra`
    (e.g. the name an operator's reverse proxy forwards)."""
    names = {f"127.0.0.1:{port}", f"localhost:{port}"}
    names.update(h.strip().lower() for h in extra if h.strip())
    return frozenset(names)


def host_allowed(host: str | None, allowed: frozenset[str]) -> bool:
    """Exact match of the Host header (name and port) against the allow-list."""
    return host is not None and host.strip().lower() in allowed


def origin_allowed(origin: str | None, allowed: frozenset[str]) -> bool:
    """No Origin (curl, the CLI, same-origin GETs) passes; a browser's Origin must name an
    allowed host. `null` (sandboxed frames, file pages) is refused."""
    if origin is None:
        return True
    origin = origin.strip().lower()
    for scheme in ("http://", "https://"):
        if origin.startswith(scheme):
            return origin[len(scheme) :].rstrip("/") in allowed
    return False


class HostGuard:
    """ASGI middleware: requests with a foreign Host or Origin never reach the wrapped app."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        if not allowed:
            raise ValueError("HostGuard needs at least one allowed host")
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if host_allowed(headers.get("host"), self.allowed) and origin_allowed(
            headers.get("origin"), self.allowed
        ):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the upgrade with 403.
            await send({"type": "websocket.close", "code": 1008, "reason": ""})
            return
        body = b"forbidden: this server answers only its own host names\n"
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _split_argv(argv: list[str]) -> tuple[frozenset[str], list[str]]:
    """`--allowed-hosts a,b -- <dagster-webserver args>` into the allow-list and the rest."""
    if len(argv) < 2 or argv[0] != "--allowed-hosts":
        raise SystemExit("usage: dagster_ui --allowed-hosts HOST:PORT[,...] -- <webserver args>")
    allowed = frozenset(h.strip().lower() for h in argv[1].split(",") if h.strip())
    if not allowed:
        raise SystemExit("dagster_ui: --allowed-hosts is empty")
    rest = argv[2:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    return allowed, rest


def main(argv: list[str] | None = None) -> None:
    """Start dagster-webserver with its app wrapped; refuse to start unguarded."""
    from dagster_webserver import cli as webserver_cli

    allowed, rest = _split_argv(list(sys.argv[1:] if argv is None else argv))
    factory = getattr(webserver_cli, _APP_FACTORY, None)
    if factory is None:  # a dagster-webserver release that builds its app differently
        raise SystemExit(
            f"dagster_ui: dagster_webserver.cli.{_APP_FACTORY} not found; "
            "refusing to serve the Dagster UI without its Host check"
        )

    def guarded(*args: Any, **kwargs: Any) -> HostGuard:
        return HostGuard(factory(*args, **kwargs), allowed)

    setattr(webserver_cli, _APP_FACTORY, guarded)
    sys.argv = ["dagster-webserver", *rest]
    webserver_cli.main()


if __name__ == "__main__":
    main()

"""The Dagster UI as `opsdash up` starts it (the same argv, an empty workspace to start fast)
refuses a DNS-rebinding page: a foreign Host or Origin gets 403, also on the websocket, while
the UI and its GraphQL answer their own host names."""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Iterator

import httpx
import pytest

from opsdash_core.settings import Settings
from opsdash_stack.services import dagster
from opsdash_stack.sinks import free_port
from opsdash_stack.supervisor import Service, start_service, stop_service

pytestmark = pytest.mark.integration

QUERY = {"query": "{ version }"}


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("dagster-ui")
    port = free_port()
    s = Settings(  # type: ignore[call-arg]
        _env_file=None,
        opsdash_home=home,
        DAGSTER_PORT=port,
        DAGSTER_ALLOWED_HOSTS="dagster.ops.internal:443",
    )
    real = dagster.webserver(s)
    workspace = real.argv.index("-w")
    argv = [*real.argv[:workspace], "--empty-workspace", *real.argv[workspace + 2 :]]
    (home / "dagster").mkdir()
    svc = Service(
        real.name, argv, port, real.health_url, 180, {"DAGSTER_HOME": str(home / "dagster")}
    )
    try:
        start_service(s, svc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_service(s, svc.name)


def _websocket_status(base: str, host: str) -> int:
    """The status line of a raw websocket upgrade to /graphql with the given Host."""
    port = int(base.rsplit(":", 1)[1])
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /graphql HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: graphql-ws\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request.encode())
        status = conn.recv(200).split(b"\r\n", 1)[0]
    return int(status.split()[1])


def test_a_foreign_host_is_refused(ui: str) -> None:
    port = ui.rsplit(":", 1)[1]
    for url in ("/server_info", "/", "/graphql"):
        response = httpx.get(ui + url, headers={"Host": f"evil.example:{port}"})
        assert response.status_code == 403, url
    posted = httpx.post(ui + "/graphql", json=QUERY, headers={"Host": f"evil.example:{port}"})
    assert posted.status_code == 403
    assert _websocket_status(ui, f"evil.example:{port}") == 403


def test_a_foreign_origin_with_the_right_host_is_refused(ui: str) -> None:
    port = ui.rsplit(":", 1)[1]
    for origin in (f"http://evil.example:{port}", "null"):
        response = httpx.post(ui + "/graphql", json=QUERY, headers={"Origin": origin})
        assert response.status_code == 403, origin


def test_the_ui_still_answers_its_own_names(ui: str) -> None:
    port = ui.rsplit(":", 1)[1]
    assert httpx.get(ui + "/server_info").json()["dagster_webserver_version"]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "dagster.ops.internal:443"):
        page = httpx.get(ui + "/", headers={"Host": host})
        assert page.status_code == 200, host
        assert "<html" in page.text.lower()
    answer = httpx.post(ui + "/graphql", json=QUERY, headers={"Origin": f"http://localhost:{port}"})
    assert answer.status_code == 200
    assert answer.json()["data"]["version"]
    assert _websocket_status(ui, f"127.0.0.1:{port}") == 101

"""The Streamlit app as `opsdash up` starts it (the same argv) refuses a DNS-rebinding page
(finding 11): a websocket upgrade to /_stcore/stream with a foreign Host, or with a foreign
Origin, gets 403, while its own host names (and a configured one) get 101. Without the
websocket the page is an empty shell: every element and all data travel over it."""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Iterator

import pytest

from opsdash_core.settings import Settings
from opsdash_stack.services import streamlit
from opsdash_stack.sinks import free_port
from opsdash_stack.supervisor import start_service, stop_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    home = tmp_path_factory.mktemp("streamlit-hosts")
    port = free_port()
    s = Settings(  # type: ignore[call-arg]
        _env_file=None,
        opsdash_home=home,
        STREAMLIT_PORT=port,
        STREAMLIT_ALLOWED_HOSTS="127.0.0.1,localhost,ops.internal",
    )
    svc = streamlit.service(s)
    try:
        start_service(s, svc)
        yield port
    finally:
        stop_service(s, svc.name)


def _websocket_status(port: int, host: str, origin: str | None = None) -> int:
    """The status of a raw websocket upgrade to Streamlit's stream endpoint."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /_stcore/stream HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        + (f"Origin: {origin}\r\n" if origin else "")
        + "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: streamlit\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request.encode())
        status = conn.recv(200).split(b"\r\n", 1)[0]
    return int(status.split()[1])


def test_a_foreign_host_is_refused(app_port: int) -> None:
    evil = f"evil.example:{app_port}"
    assert _websocket_status(app_port, evil) == 403
    assert _websocket_status(app_port, evil, origin=f"http://{evil}") == 403  # a rebinding page


def test_a_foreign_origin_with_the_right_host_is_refused(app_port: int) -> None:
    own = f"127.0.0.1:{app_port}"
    assert _websocket_status(app_port, own, origin=f"http://evil.example:{app_port}") == 403


def test_its_own_names_are_answered(app_port: int) -> None:
    for host in (f"127.0.0.1:{app_port}", f"localhost:{app_port}", "ops.internal"):
        origin = f"http://{host}"
        assert _websocket_status(app_port, host, origin=origin) == 101, host

"""The simulated support API served by uvicorn over a generated marketplace."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import psycopg
import pytest

from opsdash_core.settings import PROJECT_ROOT, get_settings
from orchestration.lib.ingest.support_client import RetryPolicy, SupportApiClient
from simulator.generator import generate
from simulator.sourcedb import scratch_database

pytestmark = pytest.mark.integration

TOKEN = "integration-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Server:
    base: str
    db: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with scratch_database(get_settings().source_url, "marketplace_simtest") as url:
        generate(url, scale=1500, days=30, seed=3, echo=lambda _m: None)
        port = free_port()
        env = {
            **os.environ,
            "SOURCE_URL": url,
            "SUPPORT_API_TOKEN": TOKEN,
            "SUPPORT_API_RATE_LIMIT": "20",
            "SUPPORT_API_FAULT_RATE": "0",
            "SUPPORT_API_LATENCY_MS": "0",
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "simulator.support_api:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=PROJECT_ROOT,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            yield Server(base, url)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def get(server: Server, params: dict | None = None, headers: dict | None = None) -> httpx.Response:
    """GET a page, waiting out rate limits the way a polite client does."""
    while True:
        r = httpx.get(
            f"{server.base}/v1/inbound_calls",
            params=params,
            headers=AUTH if headers is None else headers,
            timeout=10,
        )
        if r.status_code != 429:
            return r
        time.sleep(float(r.headers["Retry-After"]))


def db_calls(server: Server, since: datetime | None = None) -> list[tuple[int, datetime]]:
    with psycopg.connect(server.db) as conn:
        return conn.execute(
            "select id, updated_at from support.inbound_calls where updated_at >= %s "
            "order by updated_at, id",
            (since or datetime(1970, 1, 1, tzinfo=UTC),),
        ).fetchall()


def test_health_is_open(server: Server) -> None:
    assert httpx.get(f"{server.base}/health").json() == {"status": "ok"}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}]
)
def test_requests_without_the_token_get_401(server: Server, headers: dict) -> None:
    assert get(server, headers=headers).status_code == 401


def test_pagination_covers_every_row_exactly_once(server: Server) -> None:
    seen: list[dict] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 37, **({"cursor": cursor} if cursor else {})}
        body = get(server, params).json()
        seen += body["data"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    expected = db_calls(server)
    assert len(expected) > 100
    assert pages == len(expected) // 37 + 1
    assert [row["id"] for row in seen] == [row[0] for row in expected]
    first = seen[0]
    assert set(first) == {
        "id",
        "customer_id",
        "reason_code",
        "channel",
        "duration_seconds",
        "resolved",
        "called_at",
        "created_at",
        "updated_at",
    }
    assert first["updated_at"].endswith("+00:00")
    assert datetime.fromisoformat(first["updated_at"]) == expected[0][1]


def test_updated_since_filters(server: Server) -> None:
    rows = db_calls(server)
    since = rows[len(rows) // 2][1]
    body = get(server, {"updated_since": since.isoformat(), "limit": 1000}).json()
    assert [r["id"] for r in body["data"]] == [r[0] for r in db_calls(server, since)]
    assert get(server, {"updated_since": "not a time"}).status_code == 400
    assert get(server, {"cursor": "garbage"}).status_code == 400


def test_the_ingestion_client_reads_everything(server: Server) -> None:
    client = SupportApiClient(server.base, TOKEN, policy=RetryPolicy(base_delay=0.1), page_size=250)
    try:
        ids = [
            r["id"] for page in client.inbound_calls(datetime(1970, 1, 1, tzinfo=UTC)) for r in page
        ]
    finally:
        client.close()
    assert sorted(ids) == sorted(r[0] for r in db_calls(server))
    assert len(ids) == len(set(ids))


def test_bursts_get_429_with_retry_after(server: Server) -> None:
    time.sleep(1.1)
    with httpx.Client(headers=AUTH, timeout=10) as http:
        codes = [
            http.get(f"{server.base}/v1/inbound_calls", params={"limit": 1}) for _ in range(40)
        ]
    limited = [r for r in codes if r.status_code == 429]
    assert limited
    assert all(float(r.headers["Retry-After"]) >= 1 for r in limited)
    time.sleep(1.1)
    assert get(server, {"limit": 1}).status_code == 200


def test_control_faults_and_reset(server: Server) -> None:
    control = f"{server.base}/_control"
    assert httpx.post(f"{control}/faults", json={"fail_next": 1}).status_code == 401
    r = httpx.post(f"{control}/faults", headers=AUTH, json={"fail_next": 2, "status": 500})
    assert r.status_code == 200
    assert [get(server, {"limit": 1}).status_code for _ in range(3)] == [500, 500, 200]
    httpx.post(
        f"{control}/faults", headers=AUTH, json={"fail_next": 1, "status": 429, "retry_after": 2}
    )
    r = httpx.get(f"{server.base}/v1/inbound_calls", headers=AUTH)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "2"
    httpx.post(f"{control}/faults", headers=AUTH, json={"fault_rate": 1.0, "latency_ms": 300})
    t = time.monotonic()
    assert get(server, {"limit": 1}).status_code == 503
    assert time.monotonic() - t >= 0.3
    assert httpx.post(f"{control}/reset", headers=AUTH).status_code == 200
    assert get(server, {"limit": 1}).status_code == 200

"""The simulated support API's auth, cursors, rate limit and fault injection (no database)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from opsdash_core.settings import reset_settings
from simulator import support_api as api

TOKEN = "unit-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("SUPPORT_API_TOKEN", TOKEN)
    monkeypatch.setenv("SUPPORT_API_RATE_LIMIT", "5")
    monkeypatch.setenv("SUPPORT_API_FAULT_RATE", "0")
    reset_settings()
    with TestClient(api.app) as c:
        yield c
    reset_settings()


def test_cursor_round_trip_and_opaque() -> None:
    ts = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)
    cursor = api.encode_cursor(ts, 42)
    assert "42" not in cursor
    assert api.decode_cursor(cursor) == (ts, 42)


@pytest.mark.parametrize("bad", ["", "not-base64!!", "eyJ4IjogMX0"])
def test_bad_cursor_is_a_400(bad: str) -> None:
    with pytest.raises(HTTPException) as exc:
        api.decode_cursor(bad)
    assert exc.value.status_code == 400


def test_updated_since_parsing() -> None:
    assert api.parse_since(None) == api.EPOCH
    assert api.parse_since("2026-01-02T03:04:05Z") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert api.parse_since("2026-01-02T03:04:05").tzinfo == UTC
    with pytest.raises(HTTPException):
        api.parse_since("yesterday")


def test_rate_limit_window_slides() -> None:
    st = api.ApiState(token="t", rate_limit=3)
    assert [st.over_limit("t", 10.0 + i * 0.1) for i in range(4)] == [False] * 3 + [True]
    assert st.over_limit("t", 11.05) is False


def test_health_needs_no_token(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]
)
def test_data_and_control_need_the_bearer_token(client: TestClient, headers: dict) -> None:
    assert client.get("/v1/inbound_calls", headers=headers).status_code == 401
    assert client.post("/_control/reset", headers=headers).status_code == 401


def test_limit_is_validated(client: TestClient) -> None:
    assert client.get("/v1/inbound_calls?limit=0", headers=AUTH).status_code == 422
    assert client.get("/v1/inbound_calls?limit=1001", headers=AUTH).status_code == 422


def test_forced_faults_then_reset(client: TestClient) -> None:
    r = client.post("/_control/faults", headers=AUTH, json={"fail_next": 2, "status": 503})
    assert r.status_code == 200
    assert [client.get("/v1/inbound_calls", headers=AUTH).status_code for _ in range(2)] == [
        503
    ] * 2
    client.post(
        "/_control/faults", headers=AUTH, json={"fail_next": 1, "status": 429, "retry_after": 3}
    )
    r = client.get("/v1/inbound_calls", headers=AUTH)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "3"
    client.post("/_control/faults", headers=AUTH, json={"fault_rate": 1.0})
    assert client.get("/v1/inbound_calls", headers=AUTH).status_code == 503
    assert client.post("/_control/reset", headers=AUTH).json() == {"status": "reset"}
    assert api.app.state.sim.fault_rate == 0.0


def test_too_many_requests_get_429_with_retry_after(client: TestClient) -> None:
    client.post("/_control/faults", headers=AUTH, json={"fail_next": 100, "status": 500})
    codes = [client.get("/v1/inbound_calls", headers=AUTH) for _ in range(8)]
    limited = [r for r in codes if r.status_code == 429]
    assert len(limited) >= 3
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)

"""Bad input from the support API fails a page with a SupportApiError that names the cause (or
quarantines the element), never an AttributeError or an endless loop; the simulated API compares
tokens as bytes and will not start without one."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient

from opsdash_core.settings import reset_settings
from orchestration.lib.ingest.loader import split_malformed
from orchestration.lib.ingest.support_client import RetryPolicy, SupportApiClient, SupportApiError
from simulator import support_api as api

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
CALL = {"id": 1, "reason_code": "billing"}


def _client(handler: Callable[[httpx.Request], httpx.Response], **kw: object) -> SupportApiClient:
    return SupportApiClient(
        "http://support.test",
        "tok",
        policy=RetryPolicy(attempts=2, base_delay=0.0),
        sleep=lambda _s: None,
        transport=httpx.MockTransport(handler),
        **kw,  # type: ignore[arg-type]
    )


def _pages(client: SupportApiClient) -> list[list[object]]:
    return list(client.inbound_calls(SINCE))


def _json(body: object) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _r: httpx.Response(200, json=body)


@pytest.mark.parametrize(
    ("handler", "cause"),
    [
        (lambda _r: httpx.Response(200, text="<html>maintenance</html>"), "not JSON"),
        (lambda _r: httpx.Response(200, content=b"\xff\xfe\x00"), "not JSON"),
        (_json([CALL]), "JSON list, not an object"),
        (_json("ok"), "JSON str, not an object"),
        (_json({"data": {"id": 1}, "next_cursor": None}), "`data` is a JSON dict"),
        (_json({"data": [CALL], "next_cursor": 7}), "`next_cursor` is a JSON int"),
        (_json({"data": [CALL] * 3, "next_cursor": None}), "3 rows for a page of at most 2"),
    ],
)
def test_a_malformed_page_is_a_support_api_error_naming_the_cause(
    handler: Callable[[httpx.Request], httpx.Response], cause: str
) -> None:
    with pytest.raises(SupportApiError, match=cause):
        _pages(_client(handler, page_size=2))


def test_a_repeated_cursor_stops_pagination() -> None:
    calls: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params.get("cursor"))
        cursor = "B" if request.url.params.get("cursor") == "A" else "A"  # A, B, A, ...
        return httpx.Response(200, json={"data": [CALL], "next_cursor": cursor})

    with pytest.raises(SupportApiError, match="repeated next_cursor 'A' after 3 pages"):
        _pages(_client(handler))
    assert calls == [None, "A", "B"]


def test_pagination_stops_after_max_pages() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("cursor") or 0)
        return httpx.Response(200, json={"data": [CALL], "next_cursor": str(n + 1)})

    with pytest.raises(SupportApiError, match="after 5 pages"):
        _pages(_client(handler, max_pages=5))


def test_a_response_over_the_byte_cap_is_refused() -> None:
    body = json.dumps({"data": [CALL] * 50, "next_cursor": None}).encode()
    with pytest.raises(SupportApiError, match="announced"):
        _pages(_client(lambda _r: httpx.Response(200, content=body), max_response_bytes=500))

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        yield from (body[i : i + 100] for i in range(0, len(body), 100))

    with pytest.raises(SupportApiError, match="sent more than 500 bytes"):
        _pages(_client(lambda _r: httpx.Response(200, content=chunks()), max_response_bytes=500))


def test_good_pages_still_flow_and_non_objects_are_passed_on() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("cursor") is None:
            return httpx.Response(200, json={"data": [CALL, "junk"], "next_cursor": "c1"})
        return httpx.Response(200, json={"data": [None, [1]], "next_cursor": None})

    assert _pages(_client(handler)) == [[CALL, "junk"], [None, [1]]]


def test_non_object_elements_are_quarantined_with_a_reason() -> None:
    objects, rejected = split_malformed([CALL, "junk", [1, 2], None, 3, True])
    assert objects == [CALL]
    assert [r.reason for r in rejected] == [
        "row: not a JSON object but a string",
        "row: not a JSON object but a array",
        "row: not a JSON object but a null",
        "row: not a JSON object but a number",
        "row: not a JSON object but a boolean",
    ]
    assert [r.payload for r in rejected][:2] == [{"element": "junk"}, {"element": [1, 2]}]
    assert len({r.payload_hash for r in rejected}) == 5


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], TestClient]]:
    def start(token: str) -> TestClient:
        monkeypatch.setenv("SUPPORT_API_TOKEN", token)
        reset_settings()
        return TestClient(api.app)

    yield start
    reset_settings()


@pytest.mark.parametrize(
    "header",
    [
        "Bearer t\u00f6ken-with-umlaut".encode(),
        "Bearer caf\u00e9".encode("latin-1"),
        b"Bearer \xff\xfe",
        b"Bearer ",
    ],
)
def test_a_non_ascii_or_empty_token_is_a_401_not_a_500(
    sim: Callable[[str], TestClient], header: bytes
) -> None:
    with sim("unit-test-token") as client:
        resp = client.get("/v1/inbound_calls", headers={"Authorization": header})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"


def test_a_non_ascii_configured_token_still_works(sim: Callable[[str], TestClient]) -> None:
    with sim("t\u00f6ken-configured") as client:
        wrong = client.post("/_control/reset", headers={"Authorization": b"Bearer nope"})
        resp = client.post(
            "/_control/reset", headers={"Authorization": "Bearer t\u00f6ken-configured".encode()}
        )
    assert wrong.status_code == 401
    assert resp.status_code == 200


@pytest.mark.parametrize("token", ["", "   "])
def test_the_simulated_api_refuses_to_start_without_a_token(
    sim: Callable[[str], TestClient], token: str
) -> None:
    with pytest.raises(api.MissingTokenError, match="SUPPORT_API_TOKEN is empty"), sim(token):
        pass


def test_there_is_no_default_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from opsdash_core.settings import Settings

    monkeypatch.delenv("SUPPORT_API_TOKEN", raising=False)
    assert Settings(_env_file=None).support_api_token == ""  # type: ignore[call-arg]


def test_requests_are_paced_under_the_vendors_rate_limit() -> None:
    """At `max_rps` 20 no two request starts are closer than 1/20 s (plus the 5% margin), so a
    backfill never runs into the API's 429s; the wait counts time already spent."""
    now = [100.0]
    starts: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        starts.append(now[0])
        now[0] += 0.020  # each answer takes 20 ms
        page = int(request.url.params.get("cursor") or 0)
        return httpx.Response(
            200, json={"data": [CALL], "next_cursor": str(page + 1) if page < 4 else None}
        )

    def sleep(seconds: float) -> None:
        now[0] += seconds

    client = SupportApiClient(
        "http://support.test",
        "tok",
        max_rps=20,
        sleep=sleep,
        clock=lambda: now[0],
        transport=httpx.MockTransport(handler),
    )
    assert len(_pages(client)) == 5
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == pytest.approx([1.05 / 20] * 4)


def test_unpaced_by_default_in_the_client() -> None:
    slept: list[float] = []
    client = SupportApiClient(
        "http://support.test",
        "tok",
        sleep=slept.append,
        transport=httpx.MockTransport(_json({"data": [CALL], "next_cursor": None})),
    )
    assert _pages(client) == [[CALL]]
    assert slept == []

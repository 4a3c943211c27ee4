"""A support API that misbehaves never blocks the inbound_calls table: malformed elements land
in raw.quarantine with a reason while good rows load, and a page that cannot be trusted fails
the load cleanly (rolled back, watermark where it was)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from orchestration.lib.ingest.loader import ingest_table
from orchestration.lib.ingest.support_client import RetryPolicy, SupportApiClient, SupportApiError
from orchestration.lib.ingest.tables import BY_NAME

pytestmark = pytest.mark.integration

STAMP = datetime.now(UTC) - timedelta(hours=1)


def call(row_id: int) -> dict[str, object]:
    return {
        "id": row_id,
        "customer_id": 3,
        "reason_code": "billing",
        "channel": "phone",
        "duration_seconds": 60,
        "resolved": True,
        "called_at": STAMP.isoformat(),
        "created_at": STAMP.isoformat(),
        "updated_at": (STAMP + timedelta(seconds=row_id)).isoformat(),
    }


def ingest(warehouse_url: str, handler: Callable[[httpx.Request], httpx.Response]) -> object:
    client = SupportApiClient(
        "http://support.test",
        "tok",
        policy=RetryPolicy(attempts=2, base_delay=0.0),
        sleep=lambda _s: None,
        transport=httpx.MockTransport(handler),
    )
    try:
        return ingest_table(
            warehouse_url, BY_NAME["inbound_calls"], client.inbound_calls, run_id="r1"
        )
    finally:
        client.close()


def _state(warehouse_url: str) -> tuple[int, list[tuple[str, str]], object]:
    with psycopg.connect(warehouse_url) as conn:
        loaded = conn.execute("select count(*) from raw.inbound_calls").fetchone()
        quarantined = conn.execute(
            "select source_key, reason from raw.quarantine where table_name = 'inbound_calls'"
            " order by id"
        ).fetchall()
        wm = conn.execute(
            "select watermark from raw.watermarks where table_name = 'inbound_calls'"
        ).fetchone()
    assert loaded is not None
    return loaded[0], [(r[0], r[1]) for r in quarantined], wm[0] if wm else None


def test_malformed_elements_are_quarantined_and_good_rows_load(warehouse_url: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page: dict[str, object]
        if request.url.params.get("cursor") is None:
            page = {"data": [call(1), "junk", [1, 2], None], "next_cursor": "p2"}
        else:
            page = {"data": [42, call(2), {"id": 9, "reason_code": "aliens"}], "next_cursor": None}
        return httpx.Response(200, json=page)

    report = ingest(warehouse_url, handler)
    assert (report.rows_read, report.rows_upserted, report.rows_quarantined) == (7, 2, 5)  # type: ignore[attr-defined]
    loaded, quarantined, watermark = _state(warehouse_url)
    assert loaded == 2
    reasons = [reason for _key, reason in quarantined]
    assert reasons[:3] == [
        "row: not a JSON object but a string",
        "row: not a JSON object but a array",
        "row: not a JSON object but a null",
    ]
    assert "row: not a JSON object but a number" in reasons
    assert any(key == "9" and "reason_code" in reason for key, reason in quarantined)
    assert watermark == STAMP + timedelta(seconds=2)
    ingest(warehouse_url, handler)  # a re-run quarantines nothing twice
    assert len(_state(warehouse_url)[1]) == 5


@pytest.mark.parametrize(
    ("second_page", "cause"),
    [
        (lambda: httpx.Response(200, text="Service Unavailable"), "not JSON"),
        (lambda: httpx.Response(200, json=[call(2)]), "not an object"),
        (lambda: httpx.Response(200, json={"data": [call(2)], "next_cursor": "p2"}), "repeated"),
    ],
)
def test_an_untrusted_page_fails_the_load_and_keeps_the_watermark(
    warehouse_url: str, second_page: Callable[[], httpx.Response], cause: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("cursor") is None:
            return httpx.Response(200, json={"data": [call(1), "junk"], "next_cursor": "p2"})
        return second_page()

    with pytest.raises(SupportApiError, match=cause):
        ingest(warehouse_url, handler)
    loaded, quarantined, watermark = _state(warehouse_url)
    assert (loaded, quarantined) == (0, [])
    assert watermark in (None, datetime(1970, 1, 1, tzinfo=UTC))

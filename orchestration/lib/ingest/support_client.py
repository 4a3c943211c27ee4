"""HTTP client for the support system's API, with retries that respect the server.

429 and 5xx answers and timeouts are retried with exponential backoff (plus jitter), honouring
`Retry-After`; after the last attempt the load fails with a message that says what happened.

Whatever the API sends is untrusted: a body that is not JSON, not an object, too large, with
more rows than asked for, or a `next_cursor` already seen fails the page with a
`SupportApiError` naming the cause (the load rolls back, the watermark stays). Elements of
`data` are passed on as they are; the loader quarantines any that is not an object.

Requests are paced below the vendor's documented rate (`max_rps`): an API answering 429 with
`Retry-After: 1` costs a whole second per refusal, so running into the limit and backing off
is a third slower than never reaching it (a backfill of 101 pages at 20 requests/s: 7.7 s
against 5.3 s paced).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

RETRYABLE = {429, 500, 502, 503, 504}
# A full page of 1000 calls is ~300 KB of JSON: anything near this is not a page of calls.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
# Far more pages than any backlog (1000 rows each); a cursor that never ends stops here.
MAX_PAGES = 100_000


class SupportApiError(RuntimeError):
    """The support API kept failing (or refused us) after every retry."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        backoff *= 0.8 + 0.4 * random.random()
        if retry_after is not None:
            return min(self.max_delay, max(retry_after, backoff))
        return backoff


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class SupportApiClient:
    """Reads inbound calls page by page (`updated_since` + opaque cursor)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
        page_size: int = 1000,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_pages: int = MAX_PAGES,
        max_rps: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] = lambda _m: None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self.page_size = page_size
        self.max_response_bytes = max_response_bytes
        self.max_pages = max_pages
        self._sleep = sleep
        self._clock = clock
        # 5% under the limit: the server counts arrivals, which jitter by a few milliseconds.
        self._interval = 1.05 / max_rps if max_rps > 0 else 0.0
        self._next_at = 0.0
        self._log = log
        self._http = httpx.Client(
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
            trust_env=False,
            transport=transport,  # tests: an httpx.MockTransport playing a misbehaving API
        )

    def close(self) -> None:
        self._http.close()

    def _pace(self) -> None:
        """Wait for this request's slot: at most `max_rps` request starts per second."""
        if not self._interval:
            return
        now = self._clock()
        if now < self._next_at:
            self._sleep(self._next_at - now)
            now = self._next_at
        self._next_at = now + self._interval

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        last = ""
        for attempt in range(1, self.policy.attempts + 1):
            retry_after: float | None = None
            self._pace()
            try:
                status, headers, body = self._fetch(url, params)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if status == 200:
                    return self._page(url, body)
                if status not in RETRYABLE:
                    text = body[:200].decode(errors="replace")
                    raise SupportApiError(f"support API {url} answered HTTP {status}: {text}")
                retry_after = parse_retry_after(headers.get("Retry-After"))
                last = f"HTTP {status}"
            if attempt == self.policy.attempts:
                break
            wait = self.policy.delay(attempt, retry_after)
            self._log(
                f"support API: {last}; retry {attempt}/{self.policy.attempts - 1} in {wait:.1f}s"
            )
            self._sleep(wait)
        raise SupportApiError(
            f"support API {url} still failing after {self.policy.attempts} attempts "
            f"(last error: {last}); the load was rolled back and the watermark not moved"
        )

    def _fetch(self, url: str, params: dict[str, Any]) -> tuple[int, httpx.Headers, bytes]:
        """Status, headers and body, never reading more than `max_response_bytes`."""
        limit = self.max_response_bytes
        with self._http.stream("GET", url, params=params) as resp:
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise SupportApiError(
                    f"support API {url} announced {int(declared):,} bytes; the cap is {limit:,}"
                )
            body = bytearray()
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise SupportApiError(
                        f"support API {url} sent more than {limit:,} bytes; the page was dropped"
                    )
            return resp.status_code, resp.headers, bytes(body)

    def _page(self, url: str, body: bytes) -> dict[str, Any]:
        """The decoded page, or a SupportApiError saying what is wrong with its shape."""
        try:
            page = json.loads(body)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise SupportApiError(
                f"support API {url} answered 200 with a body that is not JSON ({exc}): "
                f"{body[:100].decode(errors='replace')!r}"
            ) from exc
        if not isinstance(page, dict):
            raise SupportApiError(
                f"support API {url} answered 200 with a JSON {type(page).__name__}, "
                "not an object with `data` and `next_cursor`"
            )
        data = page.get("data")
        if data is None:
            data = []
        if not isinstance(data, list):
            raise SupportApiError(
                f"support API {url}: `data` is a JSON {type(data).__name__}, not a list"
            )
        if len(data) > self.page_size:
            raise SupportApiError(
                f"support API {url} sent {len(data):,} rows for a page of at most "
                f"{self.page_size:,}"
            )
        cursor = page.get("next_cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise SupportApiError(
                f"support API {url}: `next_cursor` is a JSON {type(cursor).__name__}, not a string"
            )
        return {"data": data, "next_cursor": cursor or None}

    def inbound_calls(self, updated_since: datetime) -> Iterator[list[Any]]:
        """Pages of `data` in order. Elements are yielded as received (the loader quarantines
        non-objects); a cursor seen before, or more than `max_pages` pages, is an error."""
        cursor: str | None = None
        seen: set[str] = set()
        pages = 0
        while True:
            params: dict[str, Any] = {
                "updated_since": updated_since.isoformat(),
                "limit": self.page_size,
            }
            if cursor:
                params["cursor"] = cursor
            page = self._get("/v1/inbound_calls", params)
            pages += 1
            if page["data"]:
                yield page["data"]
            cursor = page["next_cursor"]
            if not cursor:
                return
            if cursor in seen:
                raise SupportApiError(
                    f"support API repeated next_cursor {cursor[:40]!r} after {pages} pages: "
                    "pagination stopped instead of looping"
                )
            if pages >= self.max_pages:
                raise SupportApiError(
                    f"support API still had a next page after {pages:,} pages: pagination stopped"
                )
            seen.add(cursor)

"""HTTP client for the support system's API, with retries that respect the server.

429 and 5xx answers and timeouts are retried with exponential backoff (plus jitter), honouring
`Retry-After`; after the last attempt the load fails with a message that says what happened.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

RETRYABLE = {429, 500, 502, 503, 504}


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
        sleep: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self.page_size = page_size
        self._sleep = sleep
        self._log = log
        self._http = httpx.Client(
            timeout=timeout, headers={"Authorization": f"Bearer {token}"}, trust_env=False
        )

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        last = ""
        for attempt in range(1, self.policy.attempts + 1):
            retry_after: float | None = None
            try:
                resp = self._http.get(url, params=params)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    return resp.json()
                if resp.status_code not in RETRYABLE:
                    raise SupportApiError(
                        f"support API {url} answered HTTP {resp.status_code}: {resp.text[:200]}"
                    )
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                last = f"HTTP {resp.status_code}"
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

    def inbound_calls(self, updated_since: datetime) -> Iterator[list[dict[str, Any]]]:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {
                "updated_since": updated_since.isoformat(),
                "limit": self.page_size,
            }
            if cursor:
                params["cursor"] = cursor
            page = self._get("/v1/inbound_calls", params)
            if page.get("data"):
                yield page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

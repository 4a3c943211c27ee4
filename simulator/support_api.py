"""The simulated support system's HTTP API: inbound calls, read page by page.

Run with `uvicorn simulator.support_api:app --host 127.0.0.1 --port <SUPPORT_API_PORT>`.
It behaves like a real vendor API so that ingestion is exercised properly: bearer tokens,
keyset pagination with an opaque cursor, a per-token rate limit answered with 429 +
`Retry-After`, and configurable faults (SUPPORT_API_FAULT_RATE, SUPPORT_API_LATENCY_MS, and
`POST /_control/faults` for tests).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from opsdash_core.db import close_pools, pool
from opsdash_core.settings import get_settings

PAGE_SQL = """
select id, customer_id, reason_code, channel, duration_seconds, resolved, called_at,
       created_at, updated_at
from support.inbound_calls
where updated_at >= %(since)s
  and (updated_at, id) > (%(after_ts)s, %(after_id)s)
order by updated_at, id
limit %(limit)s
"""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIELDS = (
    "id",
    "customer_id",
    "reason_code",
    "channel",
    "duration_seconds",
    "resolved",
    "called_at",
    "created_at",
    "updated_at",
)


@dataclass
class ApiState:
    """Rate-limit windows and fault settings, shared by the worker threads of one process."""

    token: str = ""
    rate_limit: int = 20
    fault_rate: float = 0.0
    latency_ms: int = 0
    fail_next: int = 0
    fail_status: int = 500
    fail_retry_after: float | None = None
    hits: dict[str, deque[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_env(cls) -> ApiState:
        s = get_settings()
        return cls(
            token=s.support_api_token,
            rate_limit=s.support_api_rate_limit,
            fault_rate=s.support_api_fault_rate,
            latency_ms=s.support_api_latency_ms,
        )

    def over_limit(self, token: str, now: float) -> bool:
        """Sliding one-second window per token."""
        with self.lock:
            window = self.hits.setdefault(token, deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= self.rate_limit:
                return True
            window.append(now)
            return False

    def take_forced_fault(self) -> tuple[int, float | None] | None:
        with self.lock:
            if self.fail_next <= 0:
                return None
            self.fail_next -= 1
            return self.fail_status, self.fail_retry_after


class FaultRequest(BaseModel):
    fail_next: int = 0
    status: int = 500
    retry_after: float | None = None
    fault_rate: float | None = None
    latency_ms: int | None = None


def encode_cursor(updated_at: datetime, row_id: int) -> str:
    raw = json.dumps({"u": updated_at.isoformat(), "i": row_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        ts = datetime.fromisoformat(data["u"])
        if ts.tzinfo is None:
            raise ValueError("cursor time without zone")
        return ts, int(data["i"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise HTTPException(400, "invalid cursor") from exc


def parse_since(value: str | None) -> datetime:
    if not value:
        return EPOCH
    try:
        # a raw "+" before the offset arrives as a space when the client did not encode it
        text = re.sub(r"(:\d{2}(?:\.\d+)?) (\d{2}:\d{2})$", r"\1+\2", value.strip())
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise HTTPException(400, "updated_since must be an ISO 8601 timestamp") from exc
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _iso(value: object) -> object:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


class MissingTokenError(RuntimeError):
    """The API would accept `Bearer ` (or a well-known token): it refuses to start instead."""


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    sim = ApiState.from_env()
    if not sim.token.strip():
        raise MissingTokenError(
            "SUPPORT_API_TOKEN is empty: the support API will not start without a token "
            "(`opsdash up` generates one into .env)"
        )
    api.state.sim = sim
    yield
    close_pools()


app = FastAPI(title="opsdash simulated support API", lifespan=lifespan)


def state(request: Request) -> ApiState:
    return request.app.state.sim


def bearer(request: Request, st: Annotated[ApiState, Depends(state)]) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    # Bytes, not str: compare_digest raises TypeError on non-ASCII str (a 500, not a 401).
    # Starlette decodes headers as latin-1, so encoding back gives the raw bytes sent, which
    # are compared with the configured token's UTF-8. An empty configured token never matches
    # (and the API refuses to start with one).
    given = token.strip().encode("latin-1")
    if (
        scheme.lower() != "bearer"
        or not st.token
        or not hmac.compare_digest(given, st.token.encode("utf-8"))
    ):
        raise HTTPException(
            401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    return token


def _error(status: int, retry_after: float | None = None) -> JSONResponse:
    headers = {}
    if status == 429 or retry_after is not None:
        headers["Retry-After"] = str(
            max(0, math.ceil(retry_after if retry_after is not None else 1))
        )
    return JSONResponse({"detail": f"simulated failure ({status})"}, status, headers=headers)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/v1/inbound_calls", response_model=None)
def inbound_calls(
    token: Annotated[str, Depends(bearer)],
    st: Annotated[ApiState, Depends(state)],
    updated_since: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> dict | JSONResponse:
    """Calls with updated_at >= updated_since, ordered by (updated_at, id), keyset-paginated."""
    if st.over_limit(token, time.monotonic()):
        return JSONResponse({"detail": "rate limit exceeded"}, 429, headers={"Retry-After": "1"})
    if st.latency_ms:
        time.sleep(st.latency_ms / 1000)
    forced = st.take_forced_fault()
    if forced:
        return _error(*forced)
    if st.fault_rate and random.random() < st.fault_rate:
        return _error(503, 1)
    since = parse_since(updated_since)
    after_ts, after_id = decode_cursor(cursor) if cursor else (EPOCH, 0)
    params = {"since": since, "after_ts": after_ts, "after_id": after_id, "limit": limit}
    with pool(get_settings().source_url).connection() as conn:
        rows = conn.execute(PAGE_SQL, params).fetchall()
    data = [{k: _iso(v) for k, v in zip(FIELDS, row, strict=True)} for row in rows]
    last = rows[-1] if len(rows) == limit else None
    # Already JSON types: a JSONResponse skips FastAPI's jsonable_encoder, which took 30 ms of
    # a 1,000-row page's ~50 ms (the page is what a vendor would send, only sooner).
    return JSONResponse(
        {"data": data, "next_cursor": encode_cursor(last[8], last[0]) if last else None}
    )


@app.post("/_control/faults", dependencies=[Depends(bearer)])
def control_faults(body: FaultRequest, st: Annotated[ApiState, Depends(state)]) -> dict:
    """Tests: fail the next N data requests with `status`, or change the fault settings."""
    with st.lock:
        st.fail_next = body.fail_next
        st.fail_status = body.status
        st.fail_retry_after = body.retry_after
        if body.fault_rate is not None:
            st.fault_rate = body.fault_rate
        if body.latency_ms is not None:
            st.latency_ms = body.latency_ms
    return {"fail_next": st.fail_next, "fault_rate": st.fault_rate, "latency_ms": st.latency_ms}


@app.post("/_control/reset", dependencies=[Depends(bearer)])
def control_reset(request: Request) -> dict[str, str]:
    """Back to the settings the process started with; forget rate-limit windows."""
    request.app.state.sim = ApiState.from_env()
    return {"status": "reset"}

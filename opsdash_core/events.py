"""Live events on a Redis Stream: what changed, for the app's toasts and cache invalidation.

A Stream rather than pub/sub because a reader that was away (an app session between reruns, a
restarted process) catches up from the last id it saw; pub/sub drops whatever arrives while
nobody listens. The stream is capped (approximate MAXLEN) so it never grows without bound.

Publishing is best effort and never fails the caller: the events mirror rows already committed
in PostgreSQL, which stays the source of truth. Publish after the commit, so a reader that
reacts to an event finds the row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from opsdash_core.redis_client import mark_redis_down, redis_client

log = logging.getLogger(__name__)

STREAM = "opsdash:events"
MAX_LEN = 10_000

EVENT_TYPES = frozenset(
    {
        "alert_created",
        "alert_updated",
        "recommendation_created",
        "recommendation_updated",
        "customer_health_updated",
        "forecast_updated",
        "metric_update",
    }
)


@dataclass(frozen=True)
class Event:
    """One stream entry: its id (a reader resumes after it), type and payload."""

    id: str
    type: str
    data: dict[str, Any]


def publish(event_type: str, data: Mapping[str, Any], *, url: str | None = None) -> str | None:
    """Append one event; returns its stream id, or None when Redis is unavailable."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}; known: {sorted(EVENT_TYPES)}")
    client = redis_client(url)
    if client is None:
        return None
    fields = {"type": event_type, "data": json.dumps(dict(data), default=str)}
    try:
        entry_id = client.xadd(STREAM, fields, maxlen=MAX_LEN, approximate=True)
    except redis.RedisError as exc:
        mark_redis_down(url, exc)
        log.warning("event %s not published (Redis: %s)", event_type, exc)
        return None
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def read_since(
    last_id: str = "$", *, count: int = 100, block_ms: int | None = None, url: str | None = None
) -> list[Event]:
    """Events after `last_id` ("0" for the whole retained stream, "$" for only new ones).

    Returns [] when Redis is unavailable, so a reader degrades to polling PostgreSQL.
    """
    client = redis_client(url)
    if client is None:
        return []
    try:
        reply = client.xread({STREAM: last_id}, count=count, block=block_ms)
    except redis.RedisError as exc:
        mark_redis_down(url, exc)
        return []
    events: list[Event] = []
    for _stream, entries in reply or []:
        for entry_id, fields in entries:
            decoded = {_text(k): _text(v) for k, v in fields.items()}
            try:
                payload = json.loads(decoded.get("data", "{}"))
            except ValueError:
                payload = {"raw": decoded.get("data")}
            events.append(Event(id=_text(entry_id), type=decoded.get("type", ""), data=payload))
    return events


def latest_id(*, url: str | None = None) -> str:
    """The id of the newest entry ("0-0" when the stream is empty or Redis is down)."""
    client = redis_client(url)
    if client is None:
        return "0-0"
    try:
        last = client.xrevrange(STREAM, count=1)
    except redis.RedisError as exc:
        mark_redis_down(url, exc)
        return "0-0"
    return _text(last[0][0]) if last else "0-0"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

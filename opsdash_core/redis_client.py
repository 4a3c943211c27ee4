"""One shared Redis client per URL, behind a short circuit breaker.

The app's query cache and the login limiter both use Redis, and both treat it as optional: after
an error, callers skip Redis for a few seconds (`mark_redis_down`) instead of paying a socket
timeout on every call. Short socket timeouts keep a dead Redis from stalling anyone.

Redis requires a password (OPSDASH_REDIS_PASSWORD): a URL that carries none gets the configured
one, so an `.env` from before the password existed keeps working.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from opsdash_core.settings import get_settings

log = logging.getLogger(__name__)

REDIS_RETRY_S = 10.0

_clients: dict[str, redis.Redis] = {}
_down_until: dict[str, float] = {}
_clients_lock = threading.Lock()


def redis_client(url: str | None = None) -> redis.Redis | None:
    """A shared client for `url`, or None while the circuit breaker says Redis is down.

    Short socket timeouts keep a dead or unreachable Redis from stalling a page rerun.
    """
    url = url or get_settings().redis_url
    if time.monotonic() < _down_until.get(url, 0.0):
        return None
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            # A password in the URL wins over this keyword (redis-py applies URL parts last).
            client = redis.Redis.from_url(
                url,
                password=get_settings().redis_password or None,
                socket_connect_timeout=0.25,
                socket_timeout=0.5,
                health_check_interval=30,
            )
            _clients[url] = client
        return client


def is_down(url: str | None = None) -> bool:
    """True while the circuit breaker skips Redis for `url` (an error in the last few seconds),
    so a page can say that it reads PostgreSQL directly."""
    url = url or get_settings().redis_url
    return time.monotonic() < _down_until.get(url, 0.0)


def mark_redis_down(url: str | None, error: Exception) -> None:
    """Skip Redis for a few seconds after an error instead of paying a timeout on every call."""
    url = url or get_settings().redis_url
    if time.monotonic() >= _down_until.get(url, 0.0):
        log.warning("Redis unavailable (%s); using the fallback for %.0fs", error, REDIS_RETRY_S)
    _down_until[url] = time.monotonic() + REDIS_RETRY_S

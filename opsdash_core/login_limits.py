"""Failed-login throttling: lock an account name out after too many wrong passwords.

Shared by every app process through Redis; a Redis outage falls back to a per-process limiter, so
it weakens the limit but never blocks or breaks logins. The key (which account) is chosen by
`accounts.limiter_key`; this module only counts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import redis

from opsdash_core.redis_client import mark_redis_down, redis_client
from opsdash_core.settings import get_settings


class LoginLimiter(Protocol):
    """Counts failed logins per username and locks the name out after too many."""

    def locked_for(self, key: str) -> float:
        """Seconds left on a lockout, 0 when logins are allowed."""
        ...

    def record_failure(self, key: str) -> float:
        """Count one failure; returns the lockout seconds it caused (0 if none)."""
        ...

    def reset(self, key: str) -> None:
        """Forget the failures after a successful login."""
        ...


@dataclass
class MemoryLoginLimiter:
    """In-process sliding-window limiter: the fallback when Redis is down, and for tests."""

    max_failures: int = 5
    window_s: float = 300.0
    lockout_s: float = 900.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, list[float]] = field(default_factory=dict, repr=False)
    _locked_until: dict[str, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def locked_for(self, key: str) -> float:
        with self._lock:
            return max(0.0, self._locked_until.get(key, 0.0) - self.clock())

    def record_failure(self, key: str) -> float:
        now = self.clock()
        with self._lock:
            recent = [t for t in self._failures.get(key, []) if t > now - self.window_s]
            recent.append(now)
            self._failures[key] = recent
            if len(recent) >= self.max_failures:
                self._locked_until[key] = now + self.lockout_s
                self._failures.pop(key, None)
                return self.lockout_s
            return 0.0

    def reset(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
            self._locked_until.pop(key, None)


@dataclass
class RedisLoginLimiter:
    """Fixed-window limiter in Redis, shared by every app process.

    Any Redis error hands the call to `fallback` (in-process), so a Redis outage weakens the
    limit to per-process but never blocks or breaks logins.
    """

    url: str
    max_failures: int = 5
    window_s: int = 300
    lockout_s: int = 900
    prefix: str = "opsdash:login"
    fallback: MemoryLoginLimiter = field(default_factory=MemoryLoginLimiter)

    def __post_init__(self) -> None:
        self.fallback.max_failures = self.max_failures
        self.fallback.window_s = self.window_s
        self.fallback.lockout_s = self.lockout_s

    def _keys(self, key: str) -> tuple[str, str]:
        return f"{self.prefix}:fail:{key}", f"{self.prefix}:lock:{key}"

    def locked_for(self, key: str) -> float:
        client = redis_client(self.url)
        if client is None:
            return self.fallback.locked_for(key)
        try:
            ttl_ms = client.pttl(self._keys(key)[1])
        except redis.RedisError as exc:
            mark_redis_down(self.url, exc)
            return self.fallback.locked_for(key)
        return max(0.0, int(ttl_ms) / 1000.0)  # -2 (no key) and -1 read as "not locked"

    def record_failure(self, key: str) -> float:
        client = redis_client(self.url)
        if client is None:
            return self.fallback.record_failure(key)
        fail_key, lock_key = self._keys(key)
        try:
            pipe = client.pipeline()
            pipe.incr(fail_key)
            pipe.expire(fail_key, self.window_s, nx=True)
            count = int(pipe.execute()[0])
            if count < self.max_failures:
                return 0.0
            pipe = client.pipeline()
            pipe.set(lock_key, 1, ex=self.lockout_s)
            pipe.delete(fail_key)
            pipe.execute()
        except redis.RedisError as exc:
            mark_redis_down(self.url, exc)
            return self.fallback.record_failure(key)
        return float(self.lockout_s)

    def reset(self, key: str) -> None:
        self.fallback.reset(key)
        client = redis_client(self.url)
        if client is None:
            return
        try:
            client.delete(*self._keys(key))
        except redis.RedisError as exc:
            mark_redis_down(self.url, exc)


_limiters: dict[str, RedisLoginLimiter] = {}


def default_limiter() -> RedisLoginLimiter:
    """The process-wide limiter on `get_settings().redis_url`."""
    url = get_settings().redis_url
    if url not in _limiters:
        _limiters[url] = RedisLoginLimiter(url)
    return _limiters[url]

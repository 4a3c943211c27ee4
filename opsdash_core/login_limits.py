"""Failed-login throttling: growing delays, never a hard lockout an attacker can aim at `admin`.

A limiter counts failures per key within a window. The first `free_failures` cost nothing;
each one after that makes the key wait before its next attempt, doubling from `base_delay_s` up
to `max_delay_s`. So a guesser gets at most one try per `max_delay_s` per key, while the real
owner of an account somebody is hammering waits at most `max_delay_s` - never the 15-minute
lockout that five requests from anyone used to cause.

The login page uses three limiters (`LoginThrottle`): per account name, per browser session
and one global bucket for the whole deployment (password spraying across many names). An
attempt refused by the session or global bucket never reaches the password check, so it does
not add to the account's delay: one noisy browser cannot push `admin`'s delay up. Only attempts
that reached the password check count toward the global bucket, so refused attempts (a browser
hammering the form while it waits) cannot raise everyone's wait either.

A browser session with no failure of its own is let through the account's wait (the login page
decides, `accounts.attempt_login(honour_wait=False)`): otherwise one bad try for `admin` every
30 s from throwaway sessions would keep the real admin waiting for good, refusing even the
right password. Such sessions still pay into the global bucket, which caps the guessing.

Shared by every app process through Redis; a Redis outage falls back to a per-process limiter,
so it weakens the limit but never blocks or breaks logins. The account key is chosen by
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
    """Counts failed logins per key and makes the key wait, longer after each failure."""

    def locked_for(self, key: str) -> float:
        """Seconds before `key` may try again, 0 when an attempt is allowed now."""
        ...

    def record_failure(self, key: str) -> float:
        """Count one failure; returns the wait it imposes (0 while failures are free)."""
        ...

    def reset(self, key: str) -> None:
        """Forget the failures after a successful login."""
        ...


@dataclass(frozen=True)
class DelayPolicy:
    """How long a key waits after its n-th failure within `window_s`."""

    free_failures: int = 3
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    window_s: float = 900.0

    def delay_after(self, failures: int) -> float:
        """0 for the free failures, then base, 2 x base, 4 x base ... capped at max."""
        extra = failures - self.free_failures - 1
        if extra < 0:
            return 0.0
        return float(min(self.base_delay_s * 2 ** min(extra, 30), self.max_delay_s))


# Per account name: three free tries, then 1, 2, 4 ... up to 30 s between tries.
USER_POLICY = DelayPolicy()
# Per browser session: five free tries, then 10 s doubling to 5 min for that session only.
SESSION_POLICY = DelayPolicy(free_failures=5, base_delay_s=10.0, max_delay_s=300.0)
# Whole deployment: 100 failures in 5 min (spraying) slow every login down, at most 60 s.
GLOBAL_POLICY = DelayPolicy(free_failures=100, base_delay_s=5.0, max_delay_s=60.0, window_s=300)


@dataclass
class MemoryLoginLimiter:
    """In-process limiter: the fallback when Redis is down, and for tests."""

    policy: DelayPolicy = USER_POLICY
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, list[float]] = field(default_factory=dict, repr=False)
    _wait_until: dict[str, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def locked_for(self, key: str) -> float:
        with self._lock:
            return max(0.0, self._wait_until.get(key, 0.0) - self.clock())

    def record_failure(self, key: str) -> float:
        now = self.clock()
        with self._lock:
            recent = [t for t in self._failures.get(key, []) if t > now - self.policy.window_s]
            recent.append(now)
            self._failures[key] = recent
            delay = self.policy.delay_after(len(recent))
            if delay > 0:
                self._wait_until[key] = now + delay
            return delay

    def reset(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
            self._wait_until.pop(key, None)


@dataclass
class RedisLoginLimiter:
    """The same limiter in Redis (a failure counter with the window as TTL and a wait key),
    shared by every app process. Any Redis error hands the call to `fallback`."""

    url: str
    policy: DelayPolicy = USER_POLICY
    prefix: str = "opsdash:login"
    fallback: MemoryLoginLimiter = field(default_factory=MemoryLoginLimiter)

    def __post_init__(self) -> None:
        self.fallback.policy = self.policy

    def _keys(self, key: str) -> tuple[str, str]:
        return f"{self.prefix}:fail:{key}", f"{self.prefix}:wait:{key}"

    def locked_for(self, key: str) -> float:
        client = redis_client(self.url)
        if client is None:
            return self.fallback.locked_for(key)
        try:
            ttl_ms = client.pttl(self._keys(key)[1])
        except redis.RedisError as exc:
            mark_redis_down(self.url, exc)
            return self.fallback.locked_for(key)
        return max(0.0, int(ttl_ms) / 1000.0)  # -2 (no key) and -1 read as "may try"

    def record_failure(self, key: str) -> float:
        client = redis_client(self.url)
        if client is None:
            return self.fallback.record_failure(key)
        fail_key, wait_key = self._keys(key)
        try:
            pipe = client.pipeline()
            pipe.incr(fail_key)
            pipe.expire(fail_key, int(self.policy.window_s), nx=True)
            count = int(pipe.execute()[0])
            delay = self.policy.delay_after(count)
            if delay > 0:
                client.set(wait_key, 1, px=max(1, int(delay * 1000)))
        except redis.RedisError as exc:
            mark_redis_down(self.url, exc)
            return self.fallback.record_failure(key)
        return delay

    def reset(self, key: str) -> None:
        self.fallback.reset(key)
        client = redis_client(self.url)
        if client is None:
            return
        try:
            client.delete(*self._keys(key))
        except redis.RedisError as exc:
            mark_redis_down(self.url, exc)


GLOBAL_KEY = "all"


@dataclass
class LoginThrottle:
    """The three buckets of the login page: account name, browser session, whole deployment."""

    user: LoginLimiter
    session: LoginLimiter
    everyone: LoginLimiter

    def refusal(self, session_key: str) -> tuple[str, float] | None:
        """("session" | "global", seconds) when this browser may not try any account now."""
        for reason, limiter, key in (
            ("session", self.session, session_key),
            ("global", self.everyone, GLOBAL_KEY),
        ):
            wait = limiter.locked_for(key)
            if wait > 0:
                return reason, wait
        return None

    def record_failure(self, session_key: str, *, checked: bool = True) -> None:
        """The session and global side of a failed attempt (the account side is recorded by
        `accounts.attempt_login`). `checked`: the password was checked; an attempt refused
        before that counts for its browser session only."""
        self.session.record_failure(session_key)
        if checked:
            self.everyone.record_failure(GLOBAL_KEY)

    def reset_session(self, session_key: str) -> None:
        self.session.reset(session_key)


_limiters: dict[str, RedisLoginLimiter] = {}
_throttles: dict[str, LoginThrottle] = {}


def default_limiter() -> RedisLoginLimiter:
    """The process-wide per-account limiter on `get_settings().redis_url`."""
    url = get_settings().redis_url
    if url not in _limiters:
        _limiters[url] = RedisLoginLimiter(url)
    return _limiters[url]


def default_throttle() -> LoginThrottle:
    """The process-wide throttle: `default_limiter()` per account, plus session and global."""
    url = get_settings().redis_url
    user = default_limiter()
    throttle = _throttles.get(url)
    if throttle is None or throttle.user is not user:
        throttle = LoginThrottle(
            user=user,
            session=RedisLoginLimiter(url, policy=SESSION_POLICY, prefix=f"{user.prefix}:session"),
            everyone=RedisLoginLimiter(url, policy=GLOBAL_POLICY, prefix=f"{user.prefix}:global"),
        )
        _throttles[url] = throttle
    return throttle

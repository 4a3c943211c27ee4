"""User accounts (password hashing, names, role hierarchy) and the login limiters (no services)."""

from __future__ import annotations

import pytest

from opsdash_core import accounts
from opsdash_core.accounts import AuthError, PermissionDeniedError, User
from opsdash_core.login_limits import (
    DelayPolicy,
    LoginThrottle,
    MemoryLoginLimiter,
    RedisLoginLimiter,
)


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _user(role: str, *, active: bool = True) -> User:
    return User(id=1, username=f"u-{role}", role=role, is_active=active)


def test_hash_password_uses_bcrypt_cost_12() -> None:
    hashed = accounts.hash_password("correct horse battery")
    assert hashed.startswith("$2b$12$")
    assert accounts.check_password("correct horse battery", hashed)
    assert not accounts.check_password("correct horse batterY", hashed)


def test_hashes_are_salted() -> None:
    assert accounts.hash_password("same-password", rounds=4) != accounts.hash_password(
        "same-password", rounds=4
    )


def test_check_password_without_hash_or_overlong_input_is_false() -> None:
    hashed = accounts.hash_password("x" * 72, rounds=4)
    assert not accounts.check_password("whatever", None)
    assert not accounts.check_password("x" * 73, hashed)
    assert not accounts.check_password("whatever", "not-a-bcrypt-hash")


@pytest.mark.parametrize("password", ["short", "", "é" * 37])
def test_password_policy(password: str) -> None:
    with pytest.raises(AuthError):
        accounts.validate_password(password)


@pytest.mark.parametrize(
    ("raw", "expected"), [("Alice", "alice"), ("  bob.smith@ops ", "bob.smith@ops"), ("a1", "a1")]
)
def test_usernames_are_normalized(raw: str, expected: str) -> None:
    assert accounts.validate_username(raw) == expected


@pytest.mark.parametrize("bad", ["", "a", "-dash", "has space", "semi;colon", "x" * 64])
def test_bad_usernames_are_rejected(bad: str) -> None:
    with pytest.raises(AuthError):
        accounts.validate_username(bad)


def test_unknown_role_is_rejected() -> None:
    with pytest.raises(AuthError, match="Role must be one of"):
        accounts.validate_role("superuser")


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        ("admin", "admin", True),
        ("admin", "operator", True),
        ("admin", "viewer", True),
        ("operator", "admin", False),
        ("operator", "operator", True),
        ("operator", "viewer", True),
        ("viewer", "admin", False),
        ("viewer", "operator", False),
        ("viewer", "viewer", True),
    ],
)
def test_role_hierarchy(role: str, needed: str, allowed: bool) -> None:
    user = _user(role)
    assert accounts.has_role(user, needed) is allowed
    if allowed:
        assert accounts.require_role(user, needed) is user
    else:
        with pytest.raises(PermissionDeniedError):
            accounts.require_role(user, needed)


def test_inactive_and_missing_users_have_no_role() -> None:
    assert not accounts.has_role(_user("admin", active=False), "viewer")
    with pytest.raises(PermissionDeniedError):
        accounts.require_role(None, "viewer")


def test_delay_grows_after_the_free_failures_and_is_capped() -> None:
    policy = DelayPolicy(free_failures=3, base_delay_s=1, max_delay_s=30)
    assert [policy.delay_after(n) for n in range(1, 11)] == [0, 0, 0, 1, 2, 4, 8, 16, 30, 30]


def test_memory_limiter_makes_a_key_wait_never_locks_it_for_long() -> None:
    clock = FakeClock()
    limiter = MemoryLoginLimiter(DelayPolicy(free_failures=3, max_delay_s=30), clock=clock)
    for _ in range(3):
        assert limiter.record_failure("admin") == 0
    assert limiter.locked_for("admin") == 0
    assert limiter.record_failure("admin") == 1
    assert limiter.locked_for("admin") == 1
    assert limiter.locked_for("bob") == 0
    for _ in range(20):  # a flood of failures: the wait stays at the cap
        limiter.record_failure("admin")
    assert limiter.locked_for("admin") == 30
    clock.advance(30.5)
    assert limiter.locked_for("admin") == 0  # the owner may try again after at most 30 s


def test_memory_limiter_window_slides() -> None:
    clock = FakeClock()
    limiter = MemoryLoginLimiter(DelayPolicy(free_failures=2, window_s=60), clock=clock)
    limiter.record_failure("alice")
    clock.advance(50)
    limiter.record_failure("alice")
    clock.advance(20)  # the first failure is now older than the window
    assert limiter.record_failure("alice") == 0
    assert limiter.record_failure("alice") == 1


def test_memory_limiter_reset_forgets_failures() -> None:
    clock = FakeClock()
    limiter = MemoryLoginLimiter(DelayPolicy(free_failures=1), clock=clock)
    limiter.record_failure("alice")
    limiter.reset("alice")
    assert limiter.locked_for("alice") == 0
    assert limiter.record_failure("alice") == 0


def test_redis_limiter_falls_back_to_memory_when_redis_is_down() -> None:
    clock = FakeClock()
    limiter = RedisLoginLimiter(
        "redis://127.0.0.1:1/0",  # nothing listens on port 1
        policy=DelayPolicy(free_failures=2, base_delay_s=60, max_delay_s=60),
        fallback=MemoryLoginLimiter(clock=clock),
    )
    assert limiter.fallback.policy.free_failures == 2
    for _ in range(2):
        assert limiter.record_failure("carol") == 0
    assert limiter.record_failure("carol") == 60
    assert limiter.locked_for("carol") == 60
    clock.advance(61)
    assert limiter.locked_for("carol") == 0
    limiter.reset("carol")


def test_throttle_refuses_a_noisy_session_and_a_spraying_deployment() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(
        user=MemoryLoginLimiter(clock=clock),
        session=MemoryLoginLimiter(DelayPolicy(free_failures=2, base_delay_s=10), clock=clock),
        everyone=MemoryLoginLimiter(DelayPolicy(free_failures=4, base_delay_s=5), clock=clock),
    )
    for _ in range(3):
        throttle.record_failure("tab-1")
    assert throttle.refusal("tab-1") == ("session", 10)
    assert throttle.refusal("tab-2") is None  # another browser is not affected ...
    throttle.record_failure("tab-2")
    throttle.record_failure("tab-3")
    assert throttle.refusal("tab-4") == ("global", 5)  # ... until everyone fails too much
    clock.advance(10)
    assert throttle.refusal("tab-1") is None


def test_refused_attempts_count_for_their_session_only() -> None:
    """An attempt refused before the password check (its session's or the account's wait)
    adds to that browser session's wait, never to the global bucket."""
    clock = FakeClock()
    throttle = LoginThrottle(
        user=MemoryLoginLimiter(clock=clock),
        session=MemoryLoginLimiter(DelayPolicy(free_failures=2, base_delay_s=10), clock=clock),
        everyone=MemoryLoginLimiter(DelayPolicy(free_failures=2, base_delay_s=5), clock=clock),
    )
    for _ in range(10):
        throttle.record_failure("tab-1", checked=False)
    assert throttle.refusal("tab-1") == ("session", 30)  # the session's wait, at its cap
    assert throttle.refusal("tab-2") is None  # nobody else waits
    for _ in range(3):
        throttle.record_failure("tab-2")  # checked passwords do count
    assert throttle.refusal("tab-3") == ("global", 5)


def test_limiter_key_is_normalized_and_bounded() -> None:
    assert accounts.limiter_key("  Alice ") == "alice"
    assert len(accounts.limiter_key("x" * 500)) == 64
    assert accounts.limiter_key("   ") == "-"

"""Users, passwords, roles and login throttling for the opsdash app and the `opsdash` CLI.

No Streamlit here: the CLI (`opsdash users add`) and `make up` (first admin) call the same
functions as the login page. Every function takes an open psycopg 3 connection to the warehouse
(`opsdash_core.db.warehouse()` or a pool connection) and wraps its writes in
`conn.transaction()`: committed at once when the caller has no transaction open, a savepoint
inside one.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import bcrypt
import psycopg
import redis
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from app_streamlit.data import mark_redis_down, redis_client
from opsdash_core.settings import get_settings

log = logging.getLogger(__name__)

ROLES = ("viewer", "operator", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
BCRYPT_ROUNDS = 12
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_BYTES = 72  # bcrypt ignores (and bcrypt>=5 rejects) anything longer
ADMIN_USERNAME = "admin"
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.@-]{1,62}$")

# A cost-12 hash of a random, discarded secret: unknown users are checked against it so that
# "no such user" takes as long as "wrong password".
_DUMMY_HASH = b"$2b$12$ojzU1JgwiWdz8T.1omiS6uFxG7Fg8E6umVhAjS470JBchd/XkJcpS"


class AuthError(ValueError):
    """A user-facing problem with a username, password or role (the message is safe to show)."""


class UserExistsError(AuthError):
    """The username is taken."""


class UnknownUserError(AuthError):
    """No user has that username."""


class PermissionDeniedError(PermissionError):
    """The user's role is below the role an action needs."""


@dataclass(frozen=True)
class User:
    """An application user as the app sees it (never carries the password hash)."""

    id: int
    username: str
    role: str
    is_active: bool = True


# ------------------------------------------------------------------------ passwords and roles


def normalize_username(username: str) -> str:
    """User names are case-insensitive: `Admin` and `admin` are one account."""
    return username.strip().lower()


def validate_username(username: str) -> str:
    name = normalize_username(username)
    if not USERNAME_RE.match(name):
        raise AuthError(
            "Username must be 2-63 characters: letters, digits, '.', '_', '-' or '@', "
            "starting with a letter or digit."
        )
    return name


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AuthError(f"Password must have at least {MIN_PASSWORD_CHARS} characters.")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise AuthError(f"Password must be at most {MAX_PASSWORD_BYTES} bytes long.")


def validate_role(role: str) -> str:
    if role not in ROLE_RANK:
        raise AuthError(f"Role must be one of {', '.join(ROLES)}; got {role!r}.")
    return role


def hash_password(password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    validate_password(password)
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def check_password(password: str, password_hash: str | bytes | None) -> bool:
    """True if `password` matches; always spends one bcrypt check, even without a hash."""
    candidate = password.encode()
    stored = password_hash.encode() if isinstance(password_hash, str) else password_hash
    if stored is None or len(candidate) > MAX_PASSWORD_BYTES:
        bcrypt.checkpw(b"timing-equalizer", _DUMMY_HASH)
        return False
    try:
        return bcrypt.checkpw(candidate, stored)
    except ValueError:  # a malformed stored hash is a failed login, not a crash
        return False


def has_role(user: User, role: str) -> bool:
    """Roles nest: admin > operator > viewer."""
    return user.is_active and ROLE_RANK[user.role] >= ROLE_RANK[validate_role(role)]


def require_role(user: User | None, role: str) -> User:
    """The user, if allowed to do what needs `role`; PermissionDeniedError otherwise."""
    if user is None or not has_role(user, role):
        raise PermissionDeniedError(f"This needs the {role} role.")
    return user


# ------------------------------------------------------------------------------ rate limiting


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


def limiter_key(username: str) -> str:
    """Throttle per account name; bounded so odd input cannot blow up Redis keys."""
    return normalize_username(username)[:64] or "-"


# ------------------------------------------------------------------------------------ queries

_USER_COLUMNS = "id, username, role, is_active"
SELECT_USER_SQL = f"select {_USER_COLUMNS}, password_hash from app.users where username = %s"
LIST_USERS_SQL = """
select id, username, role, is_active, created_at, last_login_at
from app.users
order by username
"""
INSERT_USER_SQL = f"""
insert into app.users (username, password_hash, role)
values (%s, %s, %s)
returning {_USER_COLUMNS}
"""
UPDATE_PASSWORD_SQL = "update app.users set password_hash = %s where username = %s"  # noqa: S105
TOUCH_LOGIN_SQL = "update app.users set last_login_at = now() where id = %s"
INSERT_AUDIT_SQL = "insert into app.audit_log (username, action, details) values (%s, %s, %s)"
ADMIN_EXISTS_SQL = "select 1 from app.users where username = %s"


def audit(conn: psycopg.Connection, username: str | None, action: str, **details: object) -> None:
    """One row in app.audit_log (who, what, structured details)."""
    conn.execute(INSERT_AUDIT_SQL, (username, action, Jsonb(details)))


def _user_row(conn: psycopg.Connection, username: str) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(SELECT_USER_SQL, (normalize_username(username),))
        return cur.fetchone()


def _to_user(row: dict) -> User:
    return User(
        id=int(row["id"]), username=row["username"], role=row["role"], is_active=row["is_active"]
    )


def get_user(conn: psycopg.Connection, username: str) -> User | None:
    row = _user_row(conn, username)
    return None if row is None else _to_user(row)


def get_user_with_hash(conn: psycopg.Connection, username: str) -> tuple[User, str] | None:
    """The user and its password hash; session cookies are signed with it so that a password
    change ends every session of that user."""
    row = _user_row(conn, username)
    return None if row is None else (_to_user(row), row["password_hash"])


def list_users(conn: psycopg.Connection) -> list[dict]:
    """Every user with created/last-login times, for the admin page (no hashes)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(LIST_USERS_SQL)
        return list(cur.fetchall())


def create_user(
    conn: psycopg.Connection, username: str, password: str, role: str, *, actor: str | None = None
) -> User:
    """Add a user. Raises AuthError (bad name/password/role) or UserExistsError."""
    name = validate_username(username)
    validate_role(role)
    password_hash = hash_password(password)
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute(INSERT_USER_SQL, (name, password_hash, role))
            row = cur.fetchone()
            audit(conn, actor, "user_created", user=name, role=role)
    except psycopg.errors.UniqueViolation:
        raise UserExistsError(f"User {name!r} already exists.") from None
    assert row is not None
    return _to_user(row)


def set_password(
    conn: psycopg.Connection, username: str, password: str, *, actor: str | None = None
) -> None:
    """Replace a user's password (which also signs out their other sessions)."""
    name = normalize_username(username)
    password_hash = hash_password(password)
    with conn.transaction():
        cur = conn.execute(UPDATE_PASSWORD_SQL, (password_hash, name))
        if cur.rowcount != 1:
            raise UnknownUserError(f"No user {name!r}.")
        audit(conn, actor or name, "password_changed", user=name)


def verify_login(
    conn: psycopg.Connection,
    username: str,
    password: str,
    *,
    limiter: LoginLimiter | None = None,
    client_ip: str | None = None,
) -> User | None:
    """The user if the credentials are right, the account active and not locked out.

    Unknown users cost the same bcrypt check as known ones. Every attempt is audited.
    Callers that need to tell "locked out" apart check `limiter.locked_for(limiter_key(name))`
    first.
    """
    limiter = limiter or default_limiter()
    key = limiter_key(username)
    name = normalize_username(username)
    with conn.transaction():
        if limiter.locked_for(key) > 0:
            audit(conn, name, "login_failure", reason="locked", ip=client_ip)
            return None
        row = _user_row(conn, name)
        ok = check_password(password, row["password_hash"] if row else None)
        if ok and row is not None and row["is_active"]:
            limiter.reset(key)
            conn.execute(TOUCH_LOGIN_SQL, (row["id"],))
            audit(conn, name, "login_success", ip=client_ip)
            return _to_user(row)
        reason = "inactive" if ok else ("bad_password" if row else "unknown_user")
        locked_s = limiter.record_failure(key)
        audit(conn, name, "login_failure", reason=reason, ip=client_ip, locked_s=locked_s)
        return None


def ensure_admin(conn: psycopg.Connection, password_file: Path) -> str | None:
    """Create the first admin once: a generated password, written to `password_file` (0600).

    Returns the new password, or None when `admin` already exists (nothing is changed then).
    The file is written inside the transaction, so a failed write leaves no admin behind.
    """
    if conn.execute(ADMIN_EXISTS_SQL, (ADMIN_USERNAME,)).fetchone():
        return None
    password = secrets.token_urlsafe(24)
    try:
        with conn.transaction():
            create_user(conn, ADMIN_USERNAME, password, "admin", actor="system")
            _write_secret_file(password_file, password)
            audit(conn, "system", "admin_bootstrapped", password_file=str(password_file))
    except UserExistsError:  # another process won the race
        return None
    return password


def _write_secret_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)  # O_CREAT's mode does not apply to an existing file
        fh.write(text + "\n")

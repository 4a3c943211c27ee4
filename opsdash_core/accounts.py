"""User accounts of the opsdash app: names, bcrypt passwords, roles, CRUD, login and audit.

It lives in the runtime base, not in the app, because three callers share it: the login page,
`opsdash users add` and `opsdash up` (the first admin). No Streamlit here. Every function takes an
open psycopg 3 connection to the warehouse (`opsdash_core.db.warehouse()` or a pool connection)
and wraps its writes in `conn.transaction()`: committed at once when the caller has no
transaction open, a savepoint inside one. Failed-login throttling is in `login_limits`.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from opsdash_core.login_limits import LoginLimiter, default_limiter

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


SET_ROLE_SQL = f"update app.users set role = %s where username = %s returning {_USER_COLUMNS}"
SET_ACTIVE_SQL = (
    f"update app.users set is_active = %s where username = %s returning {_USER_COLUMNS}"
)
OTHER_ADMINS_SQL = """
select count(*) from app.users
where role = 'admin' and is_active and username <> %s
"""


def _keep_an_admin(conn: psycopg.Connection, name: str) -> None:
    row = conn.execute(OTHER_ADMINS_SQL, (name,)).fetchone()
    if not row or int(row[0]) == 0:
        raise AuthError("That would leave no active admin; make someone else admin first.")


def set_role(conn: psycopg.Connection, username: str, role: str, *, actor: str) -> User:
    """Change a user's role (audited). The last active admin cannot be demoted."""
    name = normalize_username(username)
    validate_role(role)
    with conn.transaction():
        if role != "admin":
            _keep_an_admin(conn, name)
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(SET_ROLE_SQL, (role, name))
            row = cur.fetchone()
        if row is None:
            raise UnknownUserError(f"No user {name!r}.")
        audit(conn, actor, "user_role_changed", user=name, role=role)
    return _to_user(row)


def set_active(conn: psycopg.Connection, username: str, active: bool, *, actor: str) -> User:
    """Deactivate (or re-activate) a user (audited): a deactivated user's sessions stop at
    their next check, within a minute. The last active admin cannot be deactivated."""
    name = normalize_username(username)
    with conn.transaction():
        if not active:
            _keep_an_admin(conn, name)
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(SET_ACTIVE_SQL, (active, name))
            row = cur.fetchone()
        if row is None:
            raise UnknownUserError(f"No user {name!r}.")
        audit(conn, actor, "user_activated" if active else "user_deactivated", user=name)
    return _to_user(row)


@dataclass(frozen=True)
class LoginAttempt:
    """How one login attempt ended: the user on success, else why not. `reason` is "ok",
    "locked" (refused before the password check), "bad_password", "unknown_user" or
    "inactive"."""

    user: User | None
    reason: str

    @property
    def password_checked(self) -> bool:
        return self.reason != "locked"


def attempt_login(
    conn: psycopg.Connection,
    username: str,
    password: str,
    *,
    limiter: LoginLimiter | None = None,
    client_ip: str | None = None,
    honour_wait: bool = True,
) -> LoginAttempt:
    """Check the credentials, unless the account must wait after recent failures.

    Unknown users cost the same bcrypt check as known ones. Every attempt is audited.
    `honour_wait=False` checks the password even while the account waits (the login page
    passes it for a browser session with no failure of its own, see `login_limits`); a wrong
    password still adds to the account's wait.
    """
    limiter = limiter or default_limiter()
    key = limiter_key(username)
    name = normalize_username(username)
    with conn.transaction():
        waiting_s = limiter.locked_for(key)
        if waiting_s > 0 and honour_wait:
            audit(conn, name, "login_failure", reason="locked", ip=client_ip)
            return LoginAttempt(None, "locked")
        bypass = {"wait_bypassed_s": round(waiting_s, 1)} if waiting_s > 0 else {}
        row = _user_row(conn, name)
        ok = check_password(password, row["password_hash"] if row else None)
        if ok and row is not None and row["is_active"]:
            limiter.reset(key)
            conn.execute(TOUCH_LOGIN_SQL, (row["id"],))
            audit(conn, name, "login_success", ip=client_ip, **bypass)
            return LoginAttempt(_to_user(row), "ok")
        reason = "inactive" if ok else ("bad_password" if row else "unknown_user")
        locked_s = limiter.record_failure(key)
        audit(conn, name, "login_failure", reason=reason, ip=client_ip, locked_s=locked_s, **bypass)
        return LoginAttempt(None, reason)


def verify_login(
    conn: psycopg.Connection,
    username: str,
    password: str,
    *,
    limiter: LoginLimiter | None = None,
    client_ip: str | None = None,
) -> User | None:
    """The user if the credentials are right, the account active and not waiting after
    failures (`attempt_login` tells why not)."""
    return attempt_login(conn, username, password, limiter=limiter, client_ip=client_ip).user


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

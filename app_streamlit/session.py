"""Who is logged in to this Streamlit session, kept across browser reloads by a signed cookie.

How it works: Streamlit can read the cookies of the request that opened a session
(`st.context.cookies`) but has no API to set one. After a form login we render a tiny
`st.html(..., unsafe_allow_javascript=True)` snippet that sets `opsdash_session` in the browser;
its value is built here from base64url and a fixed prefix only, never from user input. A new
session (reload, deep link, new tab) reads the cookie once and verifies it:

    v1.<base64url {"u": username, "exp": unix time, "jti": random id}>.<base64url HMAC-SHA256>

The HMAC key is derived from the server secret (`OPSDASH_COOKIE_SECRET`, or a generated
`<opsdash_home>/cookie-secret`, mode 600) and the user's current password hash, so changing a
password ends all of that user's sessions. Logout revokes the token id (Redis, or memory while
Redis is down) and clears the cookie. A logged-in session re-checks its token and the user row
every minute, so deactivated users and role changes take effect without a reload.

The cookie is set from JavaScript, so it cannot be HttpOnly; it is SameSite=Strict and Secure
when the app is served over HTTPS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
import streamlit as st

from opsdash_core import accounts
from opsdash_core.accounts import User
from opsdash_core.db import pool
from opsdash_core.redis_client import mark_redis_down, redis_client
from opsdash_core.settings import Settings, get_settings

COOKIE_NAME = "opsdash_session"
SESSION_TTL_S = 12 * 3600
REVALIDATE_S = 60.0
TOKEN_VERSION = "v1"  # noqa: S105 - a format tag, not a secret
_TOKEN_RE = re.compile(r"^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_REVOKED_PREFIX = "opsdash:session:revoked"

# session_state keys
_USER = "auth_user"
_TOKEN = "auth_token"  # noqa: S105 - a session_state key
_CHECKED_AT = "auth_checked_at"
_COOKIE_READ = "auth_cookie_read"
_COOKIE_JS = "auth_cookie_js"

# ------------------------------------------------------------------------- tokens (pure code)


@dataclass(frozen=True)
class Claims:
    username: str
    exp: int
    jti: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _user_key(secret: bytes, password_hash: str) -> bytes:
    return hmac.new(secret, password_hash.encode(), hashlib.sha256).digest()


def issue_token(
    username: str,
    password_hash: str,
    secret: bytes,
    *,
    now: float,
    ttl_s: int = SESSION_TTL_S,
    jti: str | None = None,
) -> str:
    """A signed session token for `username`, valid for `ttl_s` seconds from `now`."""
    claims = {"u": username, "exp": int(now + ttl_s), "jti": jti or secrets.token_urlsafe(12)}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(_user_key(secret, password_hash), body.encode(), hashlib.sha256).digest()
    return f"{TOKEN_VERSION}.{body}.{_b64(sig)}"


def peek_claims(token: str) -> Claims | None:
    """The claims of a well-formed token, NOT verified: only to know whose hash to load."""
    if not _TOKEN_RE.match(token or ""):
        return None
    try:
        raw = json.loads(_unb64(token.split(".")[1]))
        return Claims(username=str(raw["u"]), exp=int(raw["exp"]), jti=str(raw["jti"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None


def verify_token(token: str, password_hash: str, secret: bytes, *, now: float) -> Claims | None:
    """The claims if the signature matches this user's key and the token has not expired."""
    claims = peek_claims(token)
    if claims is None or claims.exp <= now:
        return None
    _, body, sig = token.split(".")
    expected = hmac.new(_user_key(secret, password_hash), body.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(sig)
    except (ValueError, binascii.Error):
        return None
    return claims if hmac.compare_digest(expected, given) else None


def set_cookie_js(token: str, max_age_s: int = SESSION_TTL_S) -> str:
    """Browser snippet that stores `token`; refuses anything that is not one of our tokens."""
    if not _TOKEN_RE.match(token):
        raise ValueError("not a session token")
    return _cookie_js(f"{COOKIE_NAME}={token}; Path=/; Max-Age={int(max_age_s)}; SameSite=Strict")


def clear_cookie_js() -> str:
    return _cookie_js(f"{COOKIE_NAME}=; Path=/; Max-Age=0; SameSite=Strict")


def _cookie_js(cookie: str) -> str:
    return (
        "<script>(function(){var s=location.protocol==='https:'?'; Secure':'';"
        f"document.cookie='{cookie}'+s;}})();</script>"
    )


# ---------------------------------------------------------------------------- server secret

_secrets: dict[str, bytes] = {}
_secret_lock = threading.Lock()


def load_or_create_secret(path: Path) -> bytes:
    """The secret in `path`, creating it (random, mode 600) on first use; safe across processes."""
    key = str(path)
    with _secret_lock:
        if key in _secrets:
            return _secrets[key]
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            value = _read_secret(path)
        else:
            value = secrets.token_urlsafe(32)
            with os.fdopen(fd, "w") as fh:
                fh.write(value + "\n")
        _secrets[key] = value.encode()
        return _secrets[key]


def _read_secret(path: Path) -> str:
    for _ in range(50):  # another process may be between creating and writing the file
        value = path.read_text().strip()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty; delete it to generate a new cookie secret")


def cookie_secret(settings: Settings | None = None) -> bytes:
    """OPSDASH_COOKIE_SECRET if set, else the generated `<opsdash_home>/cookie-secret`."""
    settings = settings or get_settings()
    if settings.app_cookie_secret:
        return settings.app_cookie_secret.encode()
    return load_or_create_secret(settings.opsdash_home / "cookie-secret")


# ------------------------------------------------------------------------------- revocation

_revoked_local: dict[str, float] = {}


def revoke(claims: Claims, *, now: float | None = None) -> None:
    """Refuse this token from now on (until it would have expired anyway)."""
    now = time.time() if now is None else now
    ttl = max(1, int(claims.exp - now))
    _revoked_local[claims.jti] = claims.exp
    url = get_settings().redis_url
    client = redis_client(url)
    if client is None:
        return
    try:
        client.set(f"{_REVOKED_PREFIX}:{claims.jti}", 1, ex=ttl)
    except redis.RedisError as exc:
        mark_redis_down(url, exc)


def is_revoked(claims: Claims) -> bool:
    if claims.jti in _revoked_local:
        return True
    url = get_settings().redis_url
    client = redis_client(url)
    if client is None:
        return False
    try:
        return bool(client.exists(f"{_REVOKED_PREFIX}:{claims.jti}"))
    except redis.RedisError as exc:
        mark_redis_down(url, exc)
        return False


# ------------------------------------------------------------------------ Streamlit session


@contextmanager
def warehouse_conn() -> Iterator[psycopg.Connection]:
    """A pooled warehouse connection; committed when the block succeeds."""
    with pool(get_settings().warehouse_url).connection() as conn:
        yield conn


def user_for_token(token: str) -> User | None:
    """The active user a token belongs to, or None if it is forged, expired or revoked."""
    claims = peek_claims(token)
    if claims is None:
        return None
    with warehouse_conn() as conn:
        found = accounts.get_user_with_hash(conn, claims.username)
    if found is None:
        return None
    user, password_hash = found
    verified = verify_token(token, password_hash, cookie_secret(), now=time.time())
    if verified is None or not user.is_active or is_revoked(verified):
        return None
    return user


def read_cookie() -> str | None:
    """The session cookie sent with the request that opened this Streamlit session."""
    value = st.context.cookies.get(COOKIE_NAME)
    return value if isinstance(value, str) else None


def client_ip() -> str | None:
    """The browser's address as Streamlit saw it (None behind some proxies and in tests)."""
    value = st.context.ip_address
    return value if isinstance(value, str) else None


def current_user() -> User | None:
    """The logged-in user of this session, restoring it from the cookie on the first run."""
    state = st.session_state
    if _USER not in state and not state.get(_COOKIE_READ):
        token = read_cookie()
        user = user_for_token(token) if token else None  # a DB error leaves it for the next run
        state[_COOKIE_READ] = True  # read once: after a logout the old cookie must not count
        if user is not None:
            _remember(user, token)  # type: ignore[arg-type]
    user = state.get(_USER)
    if user is not None and time.monotonic() - state.get(_CHECKED_AT, 0.0) > REVALIDATE_S:
        refreshed = user_for_token(state.get(_TOKEN, ""))
        if refreshed is None:
            _forget()
            return None
        _remember(refreshed, state[_TOKEN])
        user = refreshed
    return user


def _remember(user: User, token: str) -> None:
    st.session_state[_USER] = user
    st.session_state[_TOKEN] = token
    st.session_state[_CHECKED_AT] = time.monotonic()


def _forget() -> None:
    for key in (_USER, _TOKEN, _CHECKED_AT):
        st.session_state.pop(key, None)
    st.session_state[_COOKIE_READ] = True


def login(user: User) -> None:
    """Start a session for a user `accounts.verify_login` just accepted, and persist it."""
    with warehouse_conn() as conn:
        found = accounts.get_user_with_hash(conn, user.username)
    if found is None:
        return
    user, password_hash = found
    token = issue_token(user.username, password_hash, cookie_secret(), now=time.time())
    _remember(user, token)
    st.session_state[_COOKIE_JS] = set_cookie_js(token)


def logout() -> None:
    """End the session here, revoke its token and clear the browser cookie."""
    user: User | None = st.session_state.get(_USER)
    claims = peek_claims(st.session_state.get(_TOKEN, ""))
    if claims is not None:
        revoke(claims)
    if user is not None:
        with warehouse_conn() as conn:
            accounts.audit(conn, user.username, "logout")
    _forget()
    st.session_state[_COOKIE_JS] = clear_cookie_js()


def render_cookie_writer() -> None:
    """Emit the pending set/clear-cookie snippet (kept on every rerun; setting it is idempotent)."""
    js = st.session_state.get(_COOKIE_JS)
    if js:
        st.html(js, unsafe_allow_javascript=True, width="content")


def require_user() -> User:
    """The logged-in user; otherwise stops the page (server-side guard for every page)."""
    user = current_user()
    if user is None:
        st.warning("Please log in to see this page.")
        st.stop()
    return user


def require_page_role(role: str) -> User:
    """The logged-in user if their role allows `role`; otherwise stops the page with an error."""
    user = require_user()
    try:
        return accounts.require_role(user, role)
    except accounts.PermissionDeniedError:
        st.error(f"You need the {role} role to open this page.")
        st.stop()
        raise  # unreachable: st.stop() raises

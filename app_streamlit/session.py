"""Who is logged in to this Streamlit session, kept across browser reloads by a signed cookie.

How it works: Streamlit can read the cookies of the request that opened a session
(`st.context.cookies`) but has no API to set one. After a form login we render a tiny
`st.html(..., unsafe_allow_javascript=True)` snippet that sets `opsdash_session` in the browser;
its value is built here from base64url and a fixed prefix only, never from user input. A new
session (reload, deep link, new tab) reads the cookie once and verifies it:

    v1.<base64url {"u": username, "exp": unix time, "jti": random id}>.<base64url HMAC-SHA256>

The HMAC key is derived from the server secret (`OPSDASH_COOKIE_SECRET`, or a generated
`<opsdash_home>/cookie-secret`, mode 600) and the user's current password hash, so changing a
password ends all of that user's sessions. Each token also has a row in app.user_sessions:
logout and idle expiry revoke it there (PostgreSQL, so a revocation survives restarts and
Redis), and a session without a click for `OPSDASH_SESSION_IDLE_MINUTES` (default 30) ends,
in this tab and for the cookie. A logged-in session re-checks its token, its row and the user
row every minute, so deactivated users and role changes take effect without a reload.

The cookie is set from JavaScript, so it cannot be HttpOnly; it is SameSite=Strict and Secure
when the app is served over HTTPS. The idle timeout bounds how long a stolen cookie is useful
once its owner stops using it.

Single sign-on: when Streamlit's secrets configure an OIDC identity provider (`[auth]`, see
`oidc.py`), the login page also offers "Sign in with <provider>" (`st.login`). Streamlit keeps
that identity in its own cookie (`st.user`); each new Streamlit session maps it to an opsdash
user once (`oidc.lookup`: an app.users row named by the e-mail, or the configured default
role), audits the sign-in or the refusal, and re-checks it every minute like a token session.
Logout and idle expiry end it with `st.logout()`.
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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import streamlit as st

from app_streamlit import oidc
from opsdash_core import accounts
from opsdash_core.accounts import User
from opsdash_core.db import pool
from opsdash_core.settings import Settings, get_settings

COOKIE_NAME = "opsdash_session"
SESSION_TTL_S = 12 * 3600
REVALIDATE_S = 60.0
TOKEN_VERSION = "v1"  # noqa: S105 - a format tag, not a secret
_TOKEN_RE = re.compile(r"^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")

# session_state keys
_USER = "auth_user"
_TOKEN = "auth_token"  # noqa: S105 - a session_state key
_CHECKED_AT = "auth_checked_at"
_COOKIE_READ = "auth_cookie_read"
_COOKIE_JS = "auth_cookie_js"
_LAST_ACTIVE = "auth_last_active"
_TOUCHED_AT = "auth_touched_at"
_NOTICE = "auth_notice"
_OIDC = "auth_oidc_email"  # set while the session's user signed in through the IdP
_OIDC_DONE = "auth_oidc_done"  # this session's identity was mapped (or refused) already
_OIDC_REFUSED = "auth_oidc_refused"

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


# ------------------------------------------------------------------- server-side sessions
# Every issued token has a row in app.user_sessions (migration 0011). A token whose row is
# missing, revoked or idle for too long is refused: revocation lives in PostgreSQL, so it
# survives app restarts and Redis losing keys (it fails closed: no database, no session).

INSERT_SESSION_SQL = """
insert into app.user_sessions (jti, username, expires_at)
values (%(jti)s, %(username)s, to_timestamp(%(exp)s))
"""
PRUNE_SESSIONS_SQL = "delete from app.user_sessions where expires_at < now() - interval '1 day'"
SESSION_STATE_SQL = """
select revoked_at is null as live,
       (%(idle_s)s::int = 0 or last_seen_at > now() - make_interval(secs => %(idle_s)s::int))
           as fresh
from app.user_sessions
where jti = %(jti)s and username = %(username)s
"""
REVOKE_SQL = """
update app.user_sessions set revoked_at = now(), revoked_reason = %(reason)s
where jti = %(jti)s and revoked_at is null
"""
TOUCH_SQL = "update app.user_sessions set last_seen_at = now() where jti = %(jti)s"
TOUCH_EVERY_S = 60.0


def idle_timeout_s(settings: Settings | None = None) -> int:
    """Seconds without a click before a session ends; 0 turns the timeout off."""
    return int((settings or get_settings()).app_idle_minutes) * 60


def revoke(claims: Claims, reason: str = "logout") -> None:
    """Refuse this token from now on, in every app process and after restarts."""
    with warehouse_conn() as conn:
        conn.execute(REVOKE_SQL, {"jti": claims.jti, "reason": reason})


def session_is_live(conn: psycopg.Connection, claims: Claims, idle_s: int) -> bool:
    """The token's row exists, is not revoked and saw a click within `idle_s` seconds."""
    row = conn.execute(
        SESSION_STATE_SQL, {"jti": claims.jti, "username": claims.username, "idle_s": idle_s}
    ).fetchone()
    return bool(row and row[0] and row[1])


# ------------------------------------------------------------------------ Streamlit session


@contextmanager
def warehouse_conn() -> Iterator[psycopg.Connection]:
    """A pooled warehouse connection; committed when the block succeeds."""
    with pool(get_settings().warehouse_url).connection() as conn:
        yield conn


def user_for_token(token: str) -> User | None:
    """The active user a token belongs to, or None if it is forged, expired, revoked or idle."""
    claims = peek_claims(token)
    if claims is None:
        return None
    with warehouse_conn() as conn:
        found = accounts.get_user_with_hash(conn, claims.username)
        if found is None:
            return None
        user, password_hash = found
        verified = verify_token(token, password_hash, cookie_secret(), now=time.time())
        if verified is None or not user.is_active:
            return None
        if not session_is_live(conn, verified, idle_timeout_s()):
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
    """The logged-in user of this session, restoring it from the cookie on the first run.

    Ends the session after `idle_timeout_s()` without a click; reruns of a live section on its
    timer (fragment runs) are not clicks, so a dashboard left open still times out.
    """
    state = st.session_state
    if _USER not in state and not state.get(_COOKIE_READ):
        token = read_cookie()
        user = user_for_token(token) if token else None  # a DB error leaves it for the next run
        state[_COOKIE_READ] = True  # read once: after a logout the old cookie must not count
        if user is not None:
            _remember(user, token)  # type: ignore[arg-type]
    if _USER not in state and not state.get(_OIDC_DONE):
        _adopt_oidc_identity()
    user = state.get(_USER)
    if user is None:
        return None
    now = time.monotonic()
    idle_s = idle_timeout_s()
    if idle_s and now - state.get(_LAST_ACTIVE, now) > idle_s:
        logout(reason="idle")
        state[_NOTICE] = (
            f"You were signed out after {idle_s // 60} min without activity. Please log in again."
        )
        return None
    if now - state.get(_CHECKED_AT, 0.0) > REVALIDATE_S:
        refreshed = _fresh_user()
        if refreshed is None:
            _forget()
            return None
        _remember(refreshed, state[_TOKEN])
        user = refreshed
    if not _timer_run():
        state[_LAST_ACTIVE] = now
        if now - state.get(_TOUCHED_AT, 0.0) > TOUCH_EVERY_S:
            _touch(state.get(_TOKEN, ""))
            state[_TOUCHED_AT] = now
    return user


def _timer_run() -> bool:
    """True while only a fragment reruns (a live section on its timer), not the whole page."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


def _touch(token: str) -> None:
    claims = peek_claims(token)
    if claims is not None:
        with warehouse_conn() as conn:
            conn.execute(TOUCH_SQL, {"jti": claims.jti})


def pop_notice() -> str | None:
    """A message for the login page (why the session ended), shown once."""
    notice = st.session_state.pop(_NOTICE, None)
    return notice if isinstance(notice, str) else None


def _remember(user: User, token: str) -> None:
    st.session_state[_USER] = user
    st.session_state[_TOKEN] = token
    st.session_state[_CHECKED_AT] = time.monotonic()
    st.session_state.setdefault(_LAST_ACTIVE, time.monotonic())


def _forget() -> None:
    for key in (_USER, _TOKEN, _CHECKED_AT, _LAST_ACTIVE, _TOUCHED_AT, _OIDC):
        st.session_state.pop(key, None)
    st.session_state[_COOKIE_READ] = True
    st.session_state[_OIDC_DONE] = True


def _fresh_user() -> User | None:
    """The session's user as the database sees it now (None: revoked, deactivated, gone)."""
    if st.session_state.get(_OIDC):
        identity = oidc_identity()
        if identity is None:
            return None
        with warehouse_conn() as conn:
            return oidc.lookup(conn, identity, get_settings().app_oidc_default_role).user
    return user_for_token(st.session_state.get(_TOKEN, ""))


def login(user: User) -> None:
    """Start a session for a user `accounts.verify_login` just accepted, and persist it."""
    with warehouse_conn() as conn:
        found = accounts.get_user_with_hash(conn, user.username)
        if found is None:
            return
        user, password_hash = found
        token = issue_token(user.username, password_hash, cookie_secret(), now=time.time())
        claims = peek_claims(token)
        assert claims is not None
        conn.execute(PRUNE_SESSIONS_SQL)
        conn.execute(
            INSERT_SESSION_SQL,
            {"jti": claims.jti, "username": user.username, "exp": claims.exp},
        )
    st.session_state.pop(_LAST_ACTIVE, None)
    _remember(user, token)
    st.session_state[_COOKIE_JS] = set_cookie_js(token)


def logout(reason: str = "logout") -> None:
    """End the session here, revoke its token and clear the browser cookie (and, for a
    single sign-on session, Streamlit's identity cookie through `st.logout`)."""
    user: User | None = st.session_state.get(_USER)
    via_oidc = bool(st.session_state.get(_OIDC))
    claims = peek_claims(st.session_state.get(_TOKEN, ""))
    if claims is not None:
        revoke(claims, reason)
    if user is not None:
        with warehouse_conn() as conn:
            action = "logout" if reason == "logout" else "session_expired"
            method = {"method": "oidc"} if via_oidc else {}
            accounts.audit(conn, user.username, action, reason=reason, **method)
    _forget()
    st.session_state[_COOKIE_JS] = clear_cookie_js()
    if via_oidc:
        st.logout()


# --------------------------------------------------------------------- single sign-on (OIDC)


def oidc_providers() -> list[oidc.Provider]:
    """The identity providers Streamlit's secrets configure ([] without an `[auth]` section)."""
    if not st.secrets.load_if_toml_exists():
        return []
    auth = st.secrets.get("auth")
    return oidc.providers(auth) if isinstance(auth, Mapping) else []


def oidc_identity() -> dict | None:
    """The identity `st.login` established for this session, if a provider is configured."""
    if not oidc_providers():
        return None
    info = st.user.to_dict()
    return dict(info) if info.get("is_logged_in") is True else None


def _adopt_oidc_identity() -> None:
    """Map this session's IdP identity to an opsdash user, once per session, and audit it."""
    identity = oidc_identity()
    if identity is None:
        return
    with warehouse_conn() as conn, conn.transaction():
        found = oidc.lookup(conn, identity, get_settings().app_oidc_default_role)
        details = {"method": "oidc", "issuer": str(identity.get("iss") or ""), "ip": client_ip()}
        if found.user is not None:
            accounts.audit(
                conn,
                found.email,
                "login_success",
                role=found.user.role,
                mapped_by=found.source,
                **details,
            )
        else:
            accounts.audit(
                conn, found.email[:64] or None, "login_failure", reason=found.source, **details
            )
    st.session_state[_OIDC_DONE] = True
    if found.user is None:
        st.session_state[_OIDC_REFUSED] = found.message
        return
    st.session_state.pop(_LAST_ACTIVE, None)
    _remember(found.user, "")
    st.session_state[_OIDC] = found.email


def pop_oidc_refusal() -> str | None:
    """Why this session's IdP identity was not let in (shown once on the login page)."""
    message = st.session_state.pop(_OIDC_REFUSED, None)
    return message if isinstance(message, str) else None


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


def require_fresh_role(role: str) -> User:
    """Like `require_page_role`, but the user and role are read from the database now: for the
    check right before a privileged write (the session's copy may be up to a minute old)."""
    require_user()
    fresh = _fresh_user()
    try:
        return accounts.require_role(fresh, role)
    except accounts.PermissionDeniedError:
        st.error(f"You need the {role} role to do this (your role changed or your session ended).")
        st.stop()
        raise

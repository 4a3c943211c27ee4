"""The login form, the only page a visitor sees before logging in."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable

import streamlit as st

from app_streamlit import session
from opsdash_core import accounts, login_limits

LOCKED_MESSAGE = "Too many failed attempts for this user. Wait {seconds} s and try again."
THROTTLED_MESSAGES = {
    "session": "Too many failed attempts from this browser. Wait {seconds} s and try again.",
    "global": "Too many failed logins on this server right now. Wait {seconds} s and try again.",
}
FAILED_MESSAGE = "Invalid username or password."
_SESSION_KEY = "login_session_key"
_FAILURES_KEY = "login_session_failures"


def render(on_success: Callable[[], None] = st.rerun) -> None:
    """Show the form; after a successful login call `on_success` (a rerun or page switch)."""
    st.title(":material/lock: opsdash")
    st.caption("Operations dashboard — please log in.")
    notice = session.pop_notice()
    if notice:
        st.info(notice, icon=":material/schedule:")
    _single_sign_on()
    with st.form("login", clear_on_submit=False):
        username = st.text_input("Username", key="login_username", autocomplete="username")
        password = st.text_input(
            "Password", type="password", key="login_password", autocomplete="current-password"
        )
        submitted = st.form_submit_button("Log in", type="primary")
    if not submitted:
        return
    if not username.strip() or not password:
        st.error("Enter a username and a password.")
        return
    user = _attempt(username, password)
    if user is None:
        return
    session.login(user)
    on_success()


def _browser_key() -> str:
    """A random id for this browser session: the key of its own failure bucket."""
    if _SESSION_KEY not in st.session_state:
        st.session_state[_SESSION_KEY] = secrets.token_urlsafe(12)
    return str(st.session_state[_SESSION_KEY])


def _attempt(username: str, password: str) -> accounts.User | None:
    """One login attempt through the three buckets; every attempt is audited, refused or not.

    A browser (or the whole deployment) over its budget is refused before the password check,
    so its attempts never add to the account's delay nor to the global bucket. The account's
    own wait is checked and audited inside `accounts.attempt_login`, and applies only to a
    browser session that has failed itself: a fresh session (the real owner, on another
    browser) goes through, so nobody can keep an account waiting from throwaway sessions
    (see `login_limits`).
    """
    throttle = login_limits.default_throttle()
    browser = _browser_key()
    refused = throttle.refusal(browser)
    if refused is not None:
        reason, wait_s = refused
        with session.warehouse_conn() as conn, conn.transaction():
            accounts.audit(
                conn,
                accounts.normalize_username(username)[:64],
                "login_failure",
                reason=f"{reason}_throttled",
                ip=session.client_ip(),
                wait_s=round(wait_s, 1),
            )
        _count_failure(throttle, browser, checked=False)
        st.error(THROTTLED_MESSAGES[reason].format(seconds=math.ceil(wait_s)))
        return None
    with session.warehouse_conn() as conn:
        attempt = accounts.attempt_login(
            conn,
            username,
            password,
            limiter=throttle.user,
            client_ip=session.client_ip(),
            honour_wait=int(st.session_state.get(_FAILURES_KEY, 0)) > 0,
        )
    if attempt.user is not None:
        throttle.reset_session(browser)
        st.session_state[_FAILURES_KEY] = 0
        return attempt.user
    _count_failure(throttle, browser, checked=attempt.password_checked)
    wait_s = throttle.user.locked_for(accounts.limiter_key(username))
    if wait_s > 0:
        st.error(LOCKED_MESSAGE.format(seconds=math.ceil(wait_s)))
    else:
        st.error(FAILED_MESSAGE)
    return None


def _count_failure(throttle: login_limits.LoginThrottle, browser: str, *, checked: bool) -> None:
    st.session_state[_FAILURES_KEY] = int(st.session_state.get(_FAILURES_KEY, 0)) + 1
    throttle.record_failure(browser, checked=checked)


def _single_sign_on() -> None:
    """ "Sign in with <provider>" for each configured identity provider (`st.login`); local
    accounts stay below. An identity that maps to no opsdash user is told why, and may sign
    out of it to try another account."""
    refused = session.pop_oidc_refusal()
    if refused:
        st.error(refused, icon=":material/person_off:")
        if st.button("Sign out of the identity provider", key="oidc_logout"):
            st.logout()
    providers = session.oidc_providers()
    for provider in providers:
        if st.button(
            f"Sign in with {provider.label}",
            key=f"oidc_login_{provider.name or 'default'}",
            icon=":material/key:",
        ):
            st.login(provider.name)
    if providers:
        st.caption("Or log in with an opsdash account:")

"""The login form, the only page a visitor sees before logging in."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app_streamlit import session
from opsdash_core import accounts, login_limits

LOCKED_MESSAGE = "Too many failed attempts for this user. Try again in {minutes} min."
FAILED_MESSAGE = "Invalid username or password."


def render(on_success: Callable[[], None] = st.rerun) -> None:
    """Show the form; after a successful login call `on_success` (a rerun or page switch)."""
    st.title(":material/lock: opsdash")
    st.caption("Operations dashboard — please log in.")
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


def _attempt(username: str, password: str) -> accounts.User | None:
    """One login attempt through the shared limiter; shows why it failed."""
    limiter = login_limits.default_limiter()
    key = accounts.limiter_key(username)
    locked_s = limiter.locked_for(key)
    if locked_s > 0:
        st.error(LOCKED_MESSAGE.format(minutes=max(1, round(locked_s / 60))))
        return None
    with session.warehouse_conn() as conn:
        user = accounts.verify_login(
            conn, username, password, limiter=limiter, client_ip=session.client_ip()
        )
    if user is None:
        locked_s = limiter.locked_for(key)
        if locked_s > 0:
            st.error(LOCKED_MESSAGE.format(minutes=max(1, round(locked_s / 60))))
        else:
            st.error(FAILED_MESSAGE)
    return user

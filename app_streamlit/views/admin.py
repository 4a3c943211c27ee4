"""User administration: list users, add one, change a role, deactivate or re-activate, reset a
password. Admins only; every change is audited (by `opsdash_core.accounts`).

The role is checked here, on the server, on every run; hiding the page from the navigation of
other roles is only a convenience. Right before each write it is checked again against the
database (`session.require_fresh_role`), not the session's copy that may be a minute old, so a
just-demoted admin cannot change users.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_streamlit import session
from opsdash_core import accounts


def render() -> None:
    session.require_page_role("admin")
    st.title("Admin")
    _add_user_form()
    st.subheader("Users")
    with session.warehouse_conn() as conn:
        users = accounts.list_users(conn)
    _manage_user_form([str(u["username"]) for u in users])
    frame = pd.DataFrame(
        users, columns=["username", "role", "is_active", "created_at", "last_login_at"]
    )
    for column in ("created_at", "last_login_at"):  # shown in UTC, whatever the session zone
        frame[column] = pd.to_datetime(frame[column], utc=True)
    st.dataframe(
        frame,
        hide_index=True,
        column_config={
            "username": "User",
            "role": "Role",
            "is_active": st.column_config.CheckboxColumn("Active"),
            "created_at": st.column_config.DatetimeColumn(
                "Created (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "last_login_at": st.column_config.DatetimeColumn(
                "Last login (UTC)", format="YYYY-MM-DD HH:mm"
            ),
        },
    )


def _add_user_form() -> None:
    with st.form("add_user", clear_on_submit=True):
        st.subheader("Add a user")
        cols = st.columns(3)
        username = cols[0].text_input("New username", key="new_username")
        password = cols[1].text_input("Initial password", type="password", key="new_password")
        role = cols[2].selectbox("Role", accounts.ROLES, index=0, key="new_role")
        submitted = st.form_submit_button("Add user")
    if not submitted:
        return
    # The role is re-checked right before the write, from the database.
    current = session.require_fresh_role("admin")
    try:
        with session.warehouse_conn() as conn:
            created = accounts.create_user(conn, username, password, role, actor=current.username)
    except accounts.AuthError as exc:
        st.error(str(exc))
        return
    st.success(f"Added `{created.username}` ({created.role}).")


MANAGE_ACTIONS = {
    "role": "Change role",
    "deactivate": "Deactivate",
    "activate": "Re-activate",
    "password": "Reset password",
}


def _manage_user_form(usernames: list[str]) -> None:
    with st.form("manage_user", clear_on_submit=True):
        st.markdown("**Change a user**")
        cols = st.columns(4)
        username = cols[0].selectbox("User", usernames, key="manage_username")
        action = cols[1].selectbox(
            "Action",
            list(MANAGE_ACTIONS),
            key="manage_action",
            format_func=MANAGE_ACTIONS.__getitem__,
        )
        role = cols[2].selectbox("New role", accounts.ROLES, key="manage_role")
        password = cols[3].text_input(
            "New password", type="password", key="manage_password", help="For a reset only"
        )
        submitted = st.form_submit_button("Apply")
    if not submitted or not username:
        return
    current = session.require_fresh_role("admin")
    try:
        with session.warehouse_conn() as conn:
            if action == "role":
                changed = accounts.set_role(conn, username, role, actor=current.username)
                message = f"`{changed.username}` is now {changed.role}."
            elif action in ("deactivate", "activate"):
                changed = accounts.set_active(
                    conn, username, action == "activate", actor=current.username
                )
                message = (
                    f"`{changed.username}` is {'active' if changed.is_active else 'deactivated'}."
                )
            else:
                accounts.set_password(conn, username, password, actor=current.username)
                message = f"Password of `{username}` reset; their sessions have ended."
    except accounts.AuthError as exc:
        st.error(str(exc))
        return
    st.success(message)


if __name__ == "__main__":  # run as a page script by `st.navigation` in app.py
    render()

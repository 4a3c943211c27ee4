"""User administration: list users and add one with a role. Admins only.

The role is checked here, on the server, on every run; hiding the page from the navigation of
other roles is only a convenience.
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
    st.dataframe(
        pd.DataFrame(
            users, columns=["username", "role", "is_active", "created_at", "last_login_at"]
        ),
        hide_index=True,
        column_config={
            "username": "User",
            "role": "Role",
            "is_active": st.column_config.CheckboxColumn("Active"),
            "created_at": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm"),
            "last_login_at": st.column_config.DatetimeColumn(
                "Last login", format="YYYY-MM-DD HH:mm"
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
    # The role is re-checked right before the write, not only when the page was drawn.
    current = session.require_page_role("admin")
    try:
        with session.warehouse_conn() as conn:
            created = accounts.create_user(conn, username, password, role, actor=current.username)
    except accounts.AuthError as exc:
        st.error(str(exc))
        return
    st.success(f"Added `{created.username}` ({created.role}).")


if __name__ == "__main__":  # run as a page script by `st.navigation` in app.py
    render()

"""opsdash Streamlit app: `streamlit run app_streamlit/app.py`.

A login gate in front of `st.navigation`. Logged out, every known URL (`/`, `/login`,
`/overview`, `/admin`) shows the login form, so a deep link logs in and then lands on the page
it asked for instead of a "Page not found" dialog. Logged in, the navigation lists the pages the
user's role allows; each page checks the role again itself (see `session.require_page_role`).

The page files live in `views/`, not `pages/`: a `pages/` folder next to this script would switch
Streamlit into its legacy multipage mode, where every page file is reachable by URL without this
gate. Imports point one way only: this script imports the views, never the reverse.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import streamlit as st
from streamlit.navigation.page import StreamlitPage

from app_streamlit import session
from app_streamlit.views import login
from opsdash_core import accounts

OVERVIEW = ("views/overview.py", "overview", "Overview", "📊")
ADMIN = ("views/admin.py", "admin", "Admin", "🛠️")
# Read-only pages every role sees, in navigation order (Material icons render without emoji fonts).
READ_ONLY = (
    ("views/customers.py", "customers", "Customers", ":material/groups:"),
    ("views/tutors.py", "tutors", "Tutors", ":material/school:"),
    ("views/forecasts.py", "forecasts", "Forecasts & supply", ":material/insights:"),
)
LOGIN_ICON = "🔐"


def _logged_out_pages() -> list[StreamlitPage]:
    """The login form under every URL; after login, stay on (or go to) the requested page."""
    overview = st.Page(
        _login_then(st.rerun),
        title=OVERVIEW[2],
        icon=OVERVIEW[3],
        url_path=OVERVIEW[1],
        visibility="hidden",
    )
    admin = st.Page(
        _login_then(st.rerun), title=ADMIN[2], icon=ADMIN[3], url_path=ADMIN[1], visibility="hidden"
    )
    read_only = [
        st.Page(_login_then(st.rerun), title=t, icon=i, url_path=u, visibility="hidden")
        for _, u, t, i in READ_ONLY
    ]
    entry = st.Page(
        _login_then(lambda: st.switch_page(overview)),
        title="Log in",
        icon=LOGIN_ICON,
        url_path="login",
        default=True,
    )
    return [entry, overview, *read_only, admin]


def _login_then(on_success: Callable[[], None]) -> Callable[[], None]:
    def page() -> None:
        login.render(on_success=on_success)

    return page


def _logged_in_pages(user: accounts.User) -> list[StreamlitPage]:
    overview = st.Page(OVERVIEW[0], title=OVERVIEW[2], icon=OVERVIEW[3], default=True)
    pages = [overview]
    pages += [st.Page(path, title=t, icon=i, url_path=u) for path, u, t, i in READ_ONLY]
    if accounts.has_role(user, "admin"):
        pages.append(st.Page(ADMIN[0], title=ADMIN[2], icon=ADMIN[3]))
    # A logged-in user opening /login (bookmark, back button) lands on the overview.
    pages.append(
        st.Page(
            lambda: st.switch_page(overview),
            title="Log in",
            icon=LOGIN_ICON,
            url_path="login",
            visibility="hidden",
        )
    )
    return pages


def _sidebar(user: accounts.User) -> None:
    with st.sidebar:
        st.markdown(f"Signed in as `{user.username}` ({user.role})")
        session.render_cookie_writer()
        if st.button("Log out", key="logout", icon="🚪"):
            session.logout()
            st.rerun()


def main() -> None:
    st.set_page_config(page_title="opsdash", page_icon="📊", layout="wide")
    try:
        user = session.current_user()
    except psycopg.OperationalError:
        st.error("The opsdash database is not reachable. Please try again in a minute.")
        return
    if user is None:
        nav = st.navigation(_logged_out_pages(), position="hidden")
        session.render_cookie_writer()  # clears the cookie right after a logout
    else:
        nav = st.navigation(_logged_in_pages(user))
        _sidebar(user)
    nav.run()


if __name__ == "__main__":
    main()

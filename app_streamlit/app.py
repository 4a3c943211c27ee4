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

import functools
from collections.abc import Callable

import psycopg
import streamlit as st
from PIL import Image
from psycopg_pool import PoolTimeout
from streamlit.navigation.page import StreamlitPage

from app_streamlit import live, session
from app_streamlit.views import login
from opsdash_core import accounts, redis_client

# (script, url path, title, icon, lowest role). Navigation order. Icons are Material Symbols:
# Streamlit ships the font, so they render offline (emoji need a colour-emoji font that
# Debian's Chromium lacks).
PAGES = (
    ("views/overview.py", "overview", "Overview", ":material/dashboard:", "viewer"),
    ("views/alerts.py", "alerts", "Alerts", ":material/notifications:", "viewer"),
    (
        "views/recommendations.py",
        "recommendations",
        "Recommendations",
        ":material/task_alt:",
        "viewer",
    ),
    ("views/customers.py", "customers", "Customers", ":material/groups:", "viewer"),
    ("views/tutors.py", "tutors", "Tutors", ":material/school:", "viewer"),
    ("views/forecasts.py", "forecasts", "Forecasts & supply", ":material/insights:", "viewer"),
    # Service health, failed deliveries and links into MLflow (which has no login of its own):
    # for the people who run the stack, not for read-only viewers.
    ("views/models.py", "models", "Models & data", ":material/monitor_heart:", "operator"),
    ("views/admin.py", "admin", "Admin", ":material/admin_panel_settings:", "admin"),
)
LOGIN_ICON = ":material/login:"
DATABASE_DOWN = (
    "The opsdash database is not reachable right now (restarting or overloaded). "
    "This usually passes within a minute: retry now, or wait - the page tries again every "
    "10 s."
)
RETRY_S = 10
CACHE_DOWN = (
    "Cache offline (Redis unreachable): reading the database directly, so pages may be a "
    "little slower and new-alert pop-ups wait until it is back."
)


def _logged_out_pages() -> list[StreamlitPage]:
    """The login form under every URL; after login, stay on (or go to) the requested page."""
    gated = [
        st.Page(_login_then(st.rerun), title=t, icon=i, url_path=u, visibility="hidden")
        for _, u, t, i, _role in PAGES
    ]
    overview = gated[0]
    entry = st.Page(
        _login_then(lambda: st.switch_page(overview)),
        title="Log in",
        icon=LOGIN_ICON,
        url_path="login",
        default=True,
    )
    return [entry, *gated]


def _login_then(on_success: Callable[[], None]) -> Callable[[], None]:
    def page() -> None:
        login.render(on_success=on_success)

    return page


def _logged_in_pages(user: accounts.User) -> list[StreamlitPage]:
    pages = [
        st.Page(path, title=t, icon=i, url_path=u)
        for path, u, t, i, role in PAGES
        if accounts.has_role(user, role)
    ]
    overview = pages[0]
    # The app root and /login (bookmark, back button) switch to the overview. The overview is
    # not itself the default page: a default page answers only at "/", and /overview (the
    # address after a login, a shared link) would show "Page not found".
    for alias, default in (("home", True), ("login", False)):
        pages.append(
            st.Page(
                lambda: st.switch_page(overview),
                title="Overview",
                icon=LOGIN_ICON,
                url_path=alias,
                default=default,
                visibility="hidden",
            )
        )
    return pages


def _sidebar(user: accounts.User) -> None:
    with st.sidebar:
        st.markdown(f"Signed in as `{user.username}` ({user.role})")
        session.render_cookie_writer()
        live.refresh_toggle()
        if st.button("Log out", key="logout", icon=":material/logout:"):
            session.logout()
            st.rerun()
    live.alert_toasts()


@functools.cache
def _favicon() -> Image.Image:
    """A plain blue tile (Okabe-Ito blue), drawn once per process."""
    return Image.new("RGB", (32, 32), (0, 114, 178))


def _cache_notice() -> None:
    """Said discreetly, at the bottom of the sidebar: the circuit breaker state after this run's
    reads (so a Redis that just failed shows at once)."""
    if redis_client.is_down():
        st.sidebar.caption(CACHE_DOWN)


def _database_down(exc: Exception) -> None:
    """A short outage (PostgreSQL restarting, the pool exhausted): say so, offer a retry, and
    never show a traceback (client.showErrorDetails is off too)."""
    st.error(DATABASE_DOWN, icon=":material/cloud_off:")
    st.caption(f"({type(exc).__name__})")
    if st.button("Retry now", key="retry_database", icon=":material/refresh:"):
        st.rerun()
    live.retry_soon(RETRY_S)


def main() -> None:
    # A local favicon: otherwise each page's Material icon becomes the favicon, which the
    # browser fetches from fonts.gstatic.com (fails offline).
    st.set_page_config(page_title="opsdash", page_icon=_favicon(), layout="wide")
    try:
        user = session.current_user()
        if user is None:
            nav = st.navigation(_logged_out_pages(), position="hidden")
            session.render_cookie_writer()  # clears the cookie right after a logout
        else:
            nav = st.navigation(_logged_in_pages(user))
            _sidebar(user)
        nav.run()
        if user is not None:
            _cache_notice()
    except (psycopg.Error, PoolTimeout) as exc:
        _database_down(exc)


if __name__ == "__main__":
    main()

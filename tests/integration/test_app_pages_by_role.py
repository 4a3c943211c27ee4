"""Every page x every role through the real app script (`AppTest` on app.py): a page the role
may use is in its navigation and opens without an exception; a page it may not use is absent
from the navigation and, rendered anyway, refuses with the role it needs. On the pages that
change data, only operators and admins get the controls (and the CSV export).

One seeded warehouse per module (the Customers page's hand-made marts, alerts and
recommendations); the other marts are missing, so those pages show their empty states. Roles
are logged in by replacing `session.current_user` (no bcrypt per case).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from app_streamlit import data, session
from app_streamlit.app import PAGES
from app_streamlit.views import alerts, recommendations
from opsdash_core import accounts, login_limits
from opsdash_core.db import close_pools
from opsdash_core.settings import PROJECT_ROOT, get_settings, reset_settings
from tests.integration.test_app_views_customers import _seed

pytestmark = pytest.mark.integration

APP = str(PROJECT_ROOT / "app_streamlit" / "app.py")
TIMEOUT = 60
ROLES = ("viewer", "operator", "admin")
USERS = {
    "viewer": accounts.User(id=1, username="val", role="viewer"),
    "operator": accounts.User(id=2, username="opal", role="operator"),
    "admin": accounts.User(id=3, username="boss", role="admin"),
}
ACTIONS = {"Acknowledge", "Resolve", "Dismiss"}


@pytest.fixture(scope="module")
def seeded(module_scratch_db: Callable[[str], str]) -> Iterator[str]:
    from opsdash_core.migrate import upgrade

    url = module_scratch_db("ops")
    upgrade(url)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WAREHOUSE_URL", url)
        reset_settings()
        data.clear_cache()
        redis_url = get_settings().redis_url
        limiter = login_limits.RedisLoginLimiter(redis_url, prefix="opsdash:test:roles")
        mp.setattr(login_limits, "_limiters", {redis_url: limiter})
        mp.setattr(session, "read_cookie", lambda: None)
        _seed(url)
        yield url
        close_pools()
        data.clear_cache()
    reset_settings()


@pytest.fixture
def as_role(seeded: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], accounts.User]:
    def log_in(role: str) -> accounts.User:
        user = USERS[role]
        monkeypatch.setattr(session, "current_user", lambda: user)
        return user

    monkeypatch.setattr(data, "KEY_PREFIX", f"opsdash:test:q:{uuid.uuid4().hex[:8]}")
    data.clear_cache()
    return log_in


def _view(module: str, query: dict[str, str] | None = None) -> AppTest:
    script = f"from app_streamlit.views import {module}\n{module}.render()\n"
    at = AppTest.from_string(script, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("script", "title", "needs"), [(p[0], p[2], p[4]) for p in PAGES])
def test_every_page_for_every_role(
    as_role: Callable[[str], accounts.User], role: str, script: str, title: str, needs: str
) -> None:
    user = as_role(role)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.title[0].value == "Overview"  # where a login lands
    if accounts.has_role(user, needs):
        at.switch_page(script).run()
        assert not at.exception, at.exception
        assert at.title[0].value == title
        assert not [e.value for e in at.error if "role" in e.value]
        return
    with pytest.raises(ValueError, match="Could not find"):
        at.switch_page(script)  # not in this role's navigation
    module = script.removeprefix("views/").removesuffix(".py")
    refused = _view(module)  # and the page itself refuses, should it be reached anyway
    assert not refused.exception
    assert [e.value for e in refused.error] == [f"You need the {needs} role to open this page."]
    assert not refused.dataframe
    assert not refused.text_input


@pytest.mark.parametrize("role", ROLES)
def test_alert_controls_and_export_only_for_operators(
    seeded: str, as_role: Callable[[str], accounts.User], role: str
) -> None:
    user = as_role(role)
    may_act = accounts.has_role(user, "operator")
    listing = _view("alerts", {"status": "all"})
    assert not listing.exception
    assert bool(listing.download_button) == may_act
    with psycopg.connect(seeded) as conn:
        (alert_id,) = conn.execute(
            "select id from app.alerts where status = 'open' order by id limit 1"
        ).fetchone()  # type: ignore[misc]
    detail = _view("alerts", {"alert": str(alert_id)})
    assert not detail.exception
    buttons = {b.label for b in detail.button}
    assert (buttons >= ACTIONS) == may_act
    assert not (ACTIONS & buttons) or may_act
    assert (alerts.READ_ONLY in [i.value for i in detail.info]) == (not may_act)


@pytest.mark.parametrize("role", ROLES)
def test_recommendation_controls_and_export_only_for_operators(
    as_role: Callable[[str], accounts.User], role: str
) -> None:
    user = as_role(role)
    may_act = accounts.has_role(user, "operator")
    at = _view("recommendations")
    assert not at.exception
    assert bool(at.get("form_submit_button")) == may_act
    assert bool(at.download_button) == may_act
    assert (recommendations.READ_ONLY in [c.value for c in at.caption]) == (not may_act)


@pytest.mark.parametrize("role", ROLES)
def test_admin_forms_only_for_admins(as_role: Callable[[str], accounts.User], role: str) -> None:
    as_role(role)
    at = _view("admin")
    assert not at.exception
    forms = {str(b.label) for b in at.get("form_submit_button")}
    if role == "admin":
        assert at.title[0].value == "Admin"
        assert forms  # add user, manage user
    else:
        assert not forms
        assert [e.value for e in at.error] == ["You need the admin role to open this page."]

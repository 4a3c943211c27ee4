"""Single sign-on in the app through `AppTest`: the "Sign in with <provider>" button appears
only when Streamlit's secrets configure an identity provider, and an identity `st.login`
established (seeded as `AppTest.user`) maps to an opsdash user or is refused, audited both ways.
No identity provider is involved: the redirect itself is Streamlit's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from app_streamlit import data, session
from opsdash_core import accounts, login_limits
from opsdash_core.db import close_pools
from opsdash_core.settings import PROJECT_ROOT, get_settings, reset_settings

pytestmark = pytest.mark.integration

APP = str(PROJECT_ROOT / "app_streamlit" / "app.py")
TIMEOUT = 30
AUTH = {
    "auth": {
        "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
        "cookie_secret": "a-test-cookie-secret-of-some-length",
        "okta": {
            "client_id": "opsdash",
            "client_secret": "not-a-real-secret",
            "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration",
        },
    }
}


@pytest.fixture
def app_env(warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("WAREHOUSE_URL", warehouse_url)
    monkeypatch.delenv("OPSDASH_OIDC_DEFAULT_ROLE", raising=False)
    reset_settings()
    data.clear_cache()
    url = get_settings().redis_url
    limiter = login_limits.RedisLoginLimiter(url, prefix=f"opsdash:test:{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(login_limits, "_limiters", {url: limiter})
    monkeypatch.setattr(login_limits, "_throttles", {})
    monkeypatch.setattr(session, "read_cookie", lambda: None)
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        accounts.create_user(conn, "boss", "correct-horse-1", "admin")
        accounts.create_user(conn, "ops@example.com", "correct-horse-1", "operator")
        accounts.create_user(conn, "gone@example.com", "correct-horse-1", "viewer")
        accounts.set_active(conn, "gone@example.com", False, actor="test")
    yield warehouse_url
    close_pools()
    data.clear_cache()
    monkeypatch.undo()
    reset_settings()


def _app(user: dict[str, Any] | None = None, *, secrets: bool = True) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if secrets:
        at.secrets.update(AUTH)
    if user is not None:
        at.user = user
    return at.run()


def _identity(email: str, **extra: object) -> dict[str, Any]:
    return {"is_logged_in": True, "email": email, "iss": "https://idp.example.com", **extra}


def _audit(url: str, username: str) -> list[tuple[str, dict]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select action, details from app.audit_log where username = %s order by id",
            (username,),
        ).fetchall()


def _labels(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def test_no_identity_provider_no_sign_in_button(app_env: str) -> None:
    at = _app(secrets=False)
    assert not at.exception
    assert not [label for label in _labels(at) if label.startswith("Sign in with")]
    assert [t.label for t in at.text_input] == ["Username", "Password"]


def test_a_configured_provider_gets_a_button_next_to_local_accounts(app_env: str) -> None:
    at = _app()
    assert not at.exception
    assert "Sign in with Okta" in _labels(at)
    assert [t.label for t in at.text_input] == ["Username", "Password"]  # local login stays


def test_an_identity_with_an_account_signs_in_with_its_role(app_env: str) -> None:
    at = _app(_identity("OPS@example.com", email_verified=True))
    assert not at.exception
    assert "Signed in as `ops@example.com` (operator)" in [m.value for m in at.sidebar.markdown]
    assert not at.text_input  # no login form
    ((action, details),) = _audit(app_env, "ops@example.com")[-1:]
    assert action == "login_success"
    assert details["method"] == "oidc"
    assert details["mapped_by"] == "account"
    assert details["role"] == "operator"


def test_an_unknown_identity_is_refused_and_audited(app_env: str) -> None:
    at = _app(_identity("stranger@example.com"))
    assert not at.exception
    assert any("has no opsdash account" in e.value for e in at.error)
    assert "Sign out of the identity provider" in _labels(at)
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    ((action, details),) = _audit(app_env, "stranger@example.com")
    assert (action, details["reason"], details["method"]) == (
        "login_failure",
        "unknown_user",
        "oidc",
    )


def test_a_deactivated_account_is_refused(app_env: str) -> None:
    at = _app(_identity("gone@example.com"))
    assert any("deactivated" in e.value for e in at.error)
    assert _audit(app_env, "gone@example.com")[-1][1]["reason"] == "account_inactive"


def test_the_default_role_admits_unknown_identities_as_viewers(
    app_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSDASH_OIDC_DEFAULT_ROLE", "viewer")
    reset_settings()
    at = _app(_identity("new@example.com"))
    assert not at.exception
    assert "Signed in as `new@example.com` (viewer)" in [m.value for m in at.sidebar.markdown]
    assert _audit(app_env, "new@example.com")[-1][1]["mapped_by"] == "default_role"


def test_admin_as_default_role_is_ignored(app_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSDASH_OIDC_DEFAULT_ROLE", "admin")
    reset_settings()
    at = _app(_identity("new@example.com"))
    assert any("has no opsdash account" in e.value for e in at.error)
    assert not [m for m in at.sidebar.markdown if "Signed in" in m.value]


def test_logout_of_a_single_sign_on_session_is_audited(app_env: str) -> None:
    at = _app(_identity("ops@example.com"))
    at = at.sidebar.button(key="logout").click().run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    action, details = _audit(app_env, "ops@example.com")[-1]
    assert (action, details["method"]) == ("logout", "oidc")

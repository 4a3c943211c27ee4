"""Single sign-on: which `[auth]` sections configure a provider, and how an identity maps to
an opsdash user (no identity provider needed)."""

from __future__ import annotations

import logging

import pytest

from app_streamlit import oidc
from opsdash_core.accounts import User

SHARED = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "s" * 32}
CLIENT = {
    "client_id": "opsdash",
    "client_secret": "x",
    "server_metadata_url": "https://login.example.com/realms/ops/.well-known/openid-configuration",
}
ALICE = {"is_logged_in": True, "email": "Alice@Example.com", "email_verified": True}


def test_no_auth_section_means_no_provider() -> None:
    assert oidc.providers(None) == []
    assert oidc.providers({}) == []


def test_the_unnamed_provider_is_labelled_by_its_host() -> None:
    assert oidc.providers({**SHARED, **CLIENT}) == [oidc.Provider(None, "login.example.com")]


def test_named_providers_each_get_a_button() -> None:
    auth = {**SHARED, "okta": CLIENT, "microsoft": CLIENT}
    assert oidc.providers(auth) == [
        oidc.Provider("okta", "Okta"),
        oidc.Provider("microsoft", "Microsoft"),
    ]


@pytest.mark.parametrize(
    "auth",
    [
        {**CLIENT},  # no redirect_uri / cookie_secret
        {**SHARED, "client_id": "opsdash"},  # incomplete provider
        {**SHARED, "my_idp": CLIENT},  # Streamlit refuses "_" in provider names
    ],
)
def test_incomplete_configuration_offers_nothing(auth: dict) -> None:
    assert oidc.providers(auth) == []


def test_an_email_that_names_an_account_gets_its_role() -> None:
    account = User(id=7, username="alice@example.com", role="admin")
    found = oidc.resolve(ALICE, account, "")
    assert found.user == account
    assert found.source == "account"
    assert found.email == "alice@example.com"


def test_a_deactivated_account_is_refused() -> None:
    account = User(id=7, username="alice@example.com", role="operator", is_active=False)
    found = oidc.resolve(ALICE, account, "viewer")
    assert found.user is None
    assert found.source == "account_inactive"
    assert "deactivated" in found.message


def test_unknown_identities_get_the_configured_default_role() -> None:
    found = oidc.resolve(ALICE, None, "Viewer")
    assert found.user == User(id=oidc.NO_ROW_ID, username="alice@example.com", role="viewer")
    assert found.source == "default_role"
    assert oidc.resolve(ALICE, None, "operator").user.role == "operator"  # type: ignore[union-attr]


def test_unknown_identities_are_refused_without_a_default_role() -> None:
    found = oidc.resolve(ALICE, None, "")
    assert found.user is None
    assert found.source == "unknown_user"
    assert "alice@example.com" in found.message


def test_admin_is_never_granted_by_default(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        found = oidc.resolve(ALICE, None, "admin")
    assert found.user is None
    assert "OPSDASH_OIDC_DEFAULT_ROLE" in caplog.text
    assert oidc.default_role("superuser") is None


def test_an_unverified_email_is_refused_even_with_an_account() -> None:
    account = User(id=7, username="alice@example.com", role="admin")
    found = oidc.resolve({**ALICE, "email_verified": False}, account, "viewer")
    assert found.user is None
    assert found.source == "email_unverified"


def test_an_identity_without_email_is_refused() -> None:
    found = oidc.resolve({"is_logged_in": True, "sub": "123"}, None, "viewer")
    assert found.user is None
    assert found.source == "no_email"

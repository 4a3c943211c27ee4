"""Sign-in through an OpenID Connect identity provider (Streamlit's `st.login`), when one is
configured; local accounts keep working next to it.

Configured means Streamlit's secrets (`.streamlit/secrets.toml`) hold an `[auth]` section with
`redirect_uri` and `cookie_secret` and at least one provider: `client_id`, `client_secret` and
`server_metadata_url` directly in `[auth]` (the unnamed provider) or in `[auth.<name>]`
sections (README "Signing in with an identity provider").

An identity becomes an opsdash user like this (`resolve`, pure; `lookup` reads app.users):

1. an identity whose provider says its e-mail is NOT verified is refused;
2. its e-mail (lower-cased) names an app.users row (usernames may be e-mail addresses): that
   account and its role; a deactivated account is refused;
3. otherwise the role in `OPSDASH_OIDC_DEFAULT_ROLE`, `viewer` or `operator` only (anything
   else, `admin` included, counts as unset): the person acts under their e-mail address with
   that role and has no app.users row (no password, not on the admin page);
4. otherwise refused: an admin adds the e-mail address as a user first.

No Streamlit import here: the mapping is unit-tested without a server or an IdP.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from opsdash_core import accounts
from opsdash_core.accounts import User

log = logging.getLogger(__name__)

SHARED_KEYS = ("redirect_uri", "cookie_secret")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
DEFAULT_ROLES = ("viewer", "operator")  # never admin by default
NO_ROW_ID = 0  # User.id of an identity admitted by the default role (no app.users row)


@dataclass(frozen=True)
class Provider:
    """One configured identity provider: `name` is what `st.login` takes (None = the unnamed
    provider of `[auth]`), `label` what the button says after "Sign in with"."""

    name: str | None
    label: str


@dataclass(frozen=True)
class Resolution:
    """The opsdash user of an identity, or why it was refused (a message safe to show)."""

    user: User | None
    source: str  # "account", "default_role" or the refusal reason
    email: str
    message: str = ""


def providers(auth: Mapping[str, Any] | None) -> list[Provider]:
    """The providers an `[auth]` secrets section configures; [] when it is incomplete."""
    if not auth or any(not auth.get(k) for k in SHARED_KEYS):
        return []
    found: list[Provider] = []
    if all(auth.get(k) for k in PROVIDER_KEYS):
        found.append(Provider(None, _label(None, auth)))
    for name, section in auth.items():
        if (
            isinstance(section, Mapping)
            and "_" not in str(name)  # Streamlit refuses provider names with "_"
            and all(section.get(k) for k in PROVIDER_KEYS)
        ):
            found.append(Provider(str(name), _label(str(name), section)))
    return found


def _label(name: str | None, section: Mapping[str, Any]) -> str:
    """A human name: the provider's name ("okta" -> "Okta"), else its metadata host."""
    if name:
        return name.replace("-", " ").title()
    url = str(section.get("server_metadata_url", ""))
    host = url.split("://", 1)[-1].split("/", 1)[0]
    return host or "single sign-on"


def default_role(configured: str) -> str | None:
    """The role for unknown identities: viewer or operator; None for unset or anything else."""
    role = configured.strip().lower()
    if not role:
        return None
    if role not in DEFAULT_ROLES:
        log.warning(
            "OPSDASH_OIDC_DEFAULT_ROLE=%r ignored: only %s can be granted by default",
            configured,
            " or ".join(DEFAULT_ROLES),
        )
        return None
    return role


def identity_email(identity: Mapping[str, Any]) -> str:
    return str(identity.get("email") or "").strip().lower()


def resolve(
    identity: Mapping[str, Any], account: User | None, configured_default_role: str
) -> Resolution:
    """Map a logged-in identity (`st.user`) to an opsdash user; `account` is the app.users row
    named by its e-mail, if any."""
    email = identity_email(identity)
    if not email or "@" not in email:
        return Resolution(None, "no_email", email, NO_EMAIL)
    if identity.get("email_verified") is False:
        return Resolution(None, "email_unverified", email, UNVERIFIED.format(email=email))
    if account is not None:
        if not account.is_active:
            return Resolution(None, "account_inactive", email, INACTIVE.format(email=email))
        return Resolution(account, "account", email)
    role = default_role(configured_default_role)
    if role is None:
        return Resolution(None, "unknown_user", email, UNKNOWN.format(email=email))
    return Resolution(User(id=NO_ROW_ID, username=email, role=role), "default_role", email)


def lookup(
    conn: psycopg.Connection, identity: Mapping[str, Any], configured_default_role: str
) -> Resolution:
    """`resolve` with the app.users row of the identity's e-mail read from the warehouse."""
    email = identity_email(identity)
    account = accounts.get_user(conn, email) if email else None
    return resolve(identity, account, configured_default_role)


NO_EMAIL = (
    "Your identity provider did not send an e-mail address, so opsdash cannot tell who you are."
)
UNVERIFIED = "Your identity provider says {email} is not verified; opsdash cannot sign you in."
INACTIVE = "The opsdash account {email} is deactivated. Ask an admin to reactivate it."
UNKNOWN = (
    "{email} has no opsdash account. Ask an admin to add a user named {email} "
    "(Admin page, or `opsdash users add`)."
)

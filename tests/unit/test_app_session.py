"""Signed session tokens, the cookie snippet and the cookie secret file (no services)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app_streamlit import session
from opsdash_core.settings import Settings

SECRET = b"test-secret"
HASH = "$2b$12$abcdefghijklmnopqrstuuQ0h3rCwyNqNUO2kIb5vWg5ZbV1mB3.K"
NOW = 1_800_000_000.0


def test_token_round_trip() -> None:
    token = session.issue_token("alice", HASH, SECRET, now=NOW, ttl_s=60, jti="j1")
    claims = session.verify_token(token, HASH, SECRET, now=NOW + 30)
    assert claims == session.Claims(username="alice", exp=int(NOW + 60), jti="j1")


def test_expired_token_is_refused() -> None:
    token = session.issue_token("alice", HASH, SECRET, now=NOW, ttl_s=60)
    assert session.verify_token(token, HASH, SECRET, now=NOW + 60) is None


def test_wrong_secret_or_changed_password_is_refused() -> None:
    token = session.issue_token("alice", HASH, SECRET, now=NOW)
    assert session.verify_token(token, HASH, b"other-secret", now=NOW) is None
    assert session.verify_token(token, HASH + "x", SECRET, now=NOW) is None


def test_tampered_claims_are_refused() -> None:
    token = session.issue_token("alice", HASH, SECRET, now=NOW)
    forged_body = session.issue_token("admin", HASH, b"attacker", now=NOW).split(".")[1]
    version, _, sig = token.split(".")
    forged = f"{version}.{forged_body}.{sig}"
    assert session.peek_claims(forged) is not None  # well-formed ...
    assert session.verify_token(forged, HASH, SECRET, now=NOW) is None  # ... but not signed by us


@pytest.mark.parametrize(
    "garbage", ["", "v1", "v1..", "v2.abc.def", "v1.!!!.abc", "v1.e30.abc", "v1.bm90anNvbg.abc"]
)
def test_malformed_tokens_are_refused(garbage: str) -> None:
    assert session.peek_claims(garbage) is None
    assert session.verify_token(garbage, HASH, SECRET, now=NOW) is None


def test_cookie_snippet_sets_a_strict_cookie() -> None:
    token = session.issue_token("alice", HASH, SECRET, now=NOW)
    js = session.set_cookie_js(token, max_age_s=120)
    assert f"opsdash_session={token}; Path=/; Max-Age=120; SameSite=Strict" in js
    assert "Secure" in js
    assert "Max-Age=0" in session.clear_cookie_js()


@pytest.mark.parametrize("evil", ["x';alert(1);'", "v1.a.b'</script>", "v1.a.b; Domain=evil"])
def test_cookie_snippet_refuses_anything_but_a_token(evil: str) -> None:
    with pytest.raises(ValueError, match="not a session token"):
        session.set_cookie_js(evil)


def test_secret_file_is_created_once_with_mode_600(tmp_path: Path) -> None:
    path = tmp_path / "home" / "cookie-secret"
    first = session.load_or_create_secret(path)
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    session._secrets.clear()  # a new process reads the same file
    assert session.load_or_create_secret(path) == first


def test_cookie_secret_prefers_the_setting(tmp_path: Path) -> None:
    configured = Settings(OPSDASH_COOKIE_SECRET="from-env", opsdash_home=tmp_path)
    assert session.cookie_secret(configured) == b"from-env"
    generated = Settings(OPSDASH_COOKIE_SECRET="", opsdash_home=tmp_path)
    assert (
        session.cookie_secret(generated)
        == (tmp_path / "cookie-secret").read_text().strip().encode()
    )

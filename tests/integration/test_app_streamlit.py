"""The Streamlit app through `AppTest`: login gate, roles, overview metrics, session cookie.

Runs against a migrated scratch warehouse with a small marts.customer_health fixture;
WAREHOUSE_URL points at it for the whole test.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg.types.json import Jsonb
from streamlit.testing.v1 import AppTest

from app_streamlit import data, session
from app_streamlit.views import login, overview
from opsdash_core import accounts, login_limits
from opsdash_core.db import close_pools
from opsdash_core.settings import PROJECT_ROOT, get_settings, reset_settings

pytestmark = pytest.mark.integration

APP = str(PROJECT_ROOT / "app_streamlit" / "app.py")
PASSWORD = "correct-horse-1"
TIMEOUT = 30  # bcrypt at cost 12 is ~0.2 s per check on this machine

CUSTOMER_HEALTH = """
create schema if not exists marts;
create table marts.customer_health (
    customer_id bigint primary key,
    risk_score double precision not null,
    risk_tier text not null,
    days_since_last_session integer,
    sessions_30d integer,
    avg_rating_30d numeric(3, 2),
    inbound_calls_30d integer,
    tenure_days integer,
    computed_at timestamptz not null
);
insert into marts.customer_health values
    (1, 12.0, 'low', 2, 8, 4.80, 0, 400, now() - interval '5 minutes'),
    (2, 35.5, 'medium', 9, 3, 4.10, 1, 200, now() - interval '5 minutes'),
    (3, 41.0, 'medium', 11, 2, 3.90, 0, 150, now() - interval '5 minutes'),
    (4, 71.0, 'high', 20, 1, 3.20, 2, 90, now() - interval '5 minutes'),
    (5, 78.5, 'high', 25, 0, 2.80, 3, 60, now() - interval '5 minutes'),
    (6, 93.0, 'critical', 41, 0, 2.10, 5, 30, now() - interval '5 minutes');
"""
CHURN_SCORE = """
insert into ml.churn_scores
    (customer_id, scored_at, churn_probability, top_factors, model_name, model_version)
values (%s, %s, %s, %s, 'churn', '1')
"""
ALERT = """
insert into app.alerts (rule, entity_type, entity_id, severity, title, status, dedupe_key)
values ('customer_critical', 'customer', %s, %s, %s, %s, %s)
"""


def _fill(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(CUSTOMER_HEALTH)
        factors = Jsonb([{"feature": "days_since_last_session", "shap": 0.42}])
        conn.execute(
            CHURN_SCORE,
            (
                6,
                "2026-01-01T00:00:00Z",
                0.40,
                Jsonb([]),
            ),
        )
        conn.execute(CHURN_SCORE, (6, "2026-01-02T00:00:00Z", 0.87, factors))
        for i, (severity, status) in enumerate(
            [
                ("critical", "open"),
                ("warning", "open"),
                ("info", "acknowledged"),
                ("info", "resolved"),
            ]
        ):
            conn.execute(ALERT, (i, severity, f"Alert {i}", status, f"k{i}"))
        accounts.create_user(conn, "boss", PASSWORD, "admin")
        accounts.create_user(conn, "val", PASSWORD, "viewer")


@pytest.fixture
def app_env(warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """WAREHOUSE_URL -> the scratch warehouse, fresh caches, a private login limiter."""
    monkeypatch.setenv("WAREHOUSE_URL", warehouse_url)
    reset_settings()
    data.clear_cache()
    url = get_settings().redis_url
    limiter = login_limits.RedisLoginLimiter(url, prefix=f"opsdash:test:{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(login_limits, "_limiters", {url: limiter})
    monkeypatch.setattr(login_limits, "_throttles", {})
    monkeypatch.setattr(session, "read_cookie", lambda: None)
    yield warehouse_url
    _delete_keys(f"{limiter.prefix}:*")
    close_pools()  # before the scratch database is dropped
    data.clear_cache()
    monkeypatch.undo()
    reset_settings()


def _delete_keys(pattern: str) -> None:
    client = data.redis_client()
    if client is None:
        return
    try:
        for key in client.scan_iter(pattern):
            client.delete(key)
    except redis.RedisError:
        pass  # Redis down: nothing was written there either


@pytest.fixture
def filled(app_env: str) -> str:
    _fill(app_env)
    return app_env


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT).run()


def _log_in(at: AppTest, username: str, password: str = PASSWORD) -> AppTest:
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    return at.button[0].click().run()


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_login_page_is_all_a_visitor_sees(filled: str) -> None:
    at = _app()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert at.text_input[1].proto.type == at.text_input[1].proto.PASSWORD
    assert not at.metric
    assert not at.sidebar.button  # no logout button, no pages


def test_wrong_password_shows_an_error(filled: str) -> None:
    at = _log_in(_app(), "val", "not-the-password")
    assert not at.exception
    assert [e.value for e in at.error] == [login.FAILED_MESSAGE]
    assert not at.metric


def test_unknown_user_shows_the_same_error(filled: str) -> None:
    at = _log_in(_app(), "mallory", PASSWORD)
    assert [e.value for e in at.error] == [login.FAILED_MESSAGE]


def _audited_failures(url: str, username: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select details->>'reason' from app.audit_log"
            " where action = 'login_failure' and username = %s order by id",
            (username,),
        ).fetchall()
    return [r[0] for r in rows]


def test_throttled_account_is_reported_and_audited(
    filled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = login_limits.default_limiter()
    monkeypatch.setattr(limiter, "policy", login_limits.DelayPolicy(3, 60.0, 60.0))
    at = _app()
    for _ in range(4):
        at = _log_in(at, "val", "not-the-password")
    assert "Too many failed attempts for this user" in at.error[0].value
    at = _log_in(at, "val", PASSWORD)  # the browser that failed waits, even with the password
    assert "Too many failed attempts for this user" in at.error[0].value
    assert not at.metric
    assert _audited_failures(filled, "val") == ["bad_password"] * 4 + ["locked"]


def test_throwaway_sessions_cannot_keep_an_account_waiting(
    filled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One bad try for `boss` from a fresh browser session every so often keeps the account
    waiting; the real admin, in a session with no failure of its own, still gets in at once
    with the right password (the global bucket is what caps such guessing)."""
    limiter = login_limits.default_limiter()
    monkeypatch.setattr(limiter, "policy", login_limits.DelayPolicy(0, 600.0, 600.0))
    for _ in range(3):
        attacker = _log_in(_app(), "boss", "guess-guess-guess")
        assert "Too many failed attempts for this user" in attacker.error[0].value
    assert limiter.locked_for(accounts.limiter_key("boss")) > 500  # the account waits ...
    admin = _log_in(_app(), "boss")
    assert not admin.exception
    assert admin.title[0].value == "Overview"  # ... but not its owner in a clean session
    with psycopg.connect(filled) as conn:
        (bypassed,) = conn.execute(
            "select details->>'wait_bypassed_s' from app.audit_log"
            " where action = 'login_success' and username = 'boss'"
        ).fetchone()
    assert float(bypassed) > 500  # audited as a success through the account's wait


def test_only_checked_passwords_count_toward_the_global_bucket(
    filled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A browser hammering the form while it is refused (its own wait, the account's) does not
    push the whole deployment into the global wait: only tries that reached bcrypt count."""
    throttle = login_limits.default_throttle()
    monkeypatch.setattr(throttle.session, "policy", login_limits.DelayPolicy(2, 600.0, 600.0))
    monkeypatch.setattr(throttle.everyone, "policy", login_limits.DelayPolicy(4, 600.0, 600.0))
    attacker = _app()
    for _ in range(12):
        attacker = _log_in(attacker, "boss", "guess-guess-guess")
    assert "from this browser" in attacker.error[0].value
    reasons = _audited_failures(filled, "boss")
    assert len(reasons) == 12
    assert reasons.count("bad_password") == 3  # the rest never reached the password check
    assert throttle.everyone.locked_for(login_limits.GLOBAL_KEY) == 0
    someone = _log_in(_app(), "val")
    assert not [e for e in someone.error if "Too many" in e.value]
    assert someone.title[0].value == "Overview"  # logged in, no global wait


def test_ten_wrong_admin_passwords_do_not_lock_admin_out(
    filled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker's browser session burns its own budget; the account only waits a little,
    and the real admin logs in from another browser right after that short wait."""
    limiter = login_limits.default_limiter()
    monkeypatch.setattr(limiter, "policy", login_limits.DelayPolicy(3, 0.5, 1.0))
    attacker = _app()
    for _ in range(10):
        attacker = _log_in(attacker, "boss", "guess-guess-guess")
    assert "from this browser" in attacker.error[0].value
    reasons = _audited_failures(filled, "boss")
    assert len(reasons) == 10  # every attempt audited, the refused ones too
    assert "session_throttled" in reasons
    assert reasons.count("bad_password") <= 5  # the rest never reached bcrypt

    wait_s = limiter.locked_for(accounts.limiter_key("boss"))
    assert wait_s <= 1.0
    time.sleep(wait_s)
    admin = _log_in(_app(), "boss")
    assert not admin.exception
    assert admin.title[0].value == "Overview"


def test_idle_session_ends_and_its_cookie_stops_working(
    filled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _log_in(_app(), "val")
    token = at.session_state["auth_token"]
    at.session_state["auth_last_active"] = time.monotonic() - session.idle_timeout_s() - 1
    at.run()
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert any("without activity" in i.value for i in at.info)
    assert session.user_for_token(token) is None  # revoked in PostgreSQL, not just this tab

    # A cookie whose session saw no click for longer than the timeout is refused on reload.
    fresh = _log_in(_app(), "val")
    token = fresh.session_state["auth_token"]
    assert session.user_for_token(token) is not None
    with psycopg.connect(filled, autocommit=True) as conn:
        conn.execute("update app.user_sessions set last_seen_at = now() - interval '31 minutes'")
    monkeypatch.setattr(session, "read_cookie", lambda: token)
    assert [t.label for t in _app().text_input] == ["Username", "Password"]


def test_database_outage_shows_a_message_and_a_retry_not_a_traceback(
    filled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app_streamlit import app

    def down() -> None:
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(session, "current_user", down)
    at = _app()
    assert not at.exception
    assert [e.value for e in at.error] == [app.DATABASE_DOWN]
    assert at.button(key="retry_database")


def test_overview_renders_metrics_from_the_mart(filled: str) -> None:
    """Without the KPI mart the cards fall back to marts.customer_health's numbers."""
    at = _log_in(_app(), "val")
    assert not at.exception
    assert at.title[0].value == "Overview"
    metrics = _metrics(at)
    assert metrics["Active customers"] == "6"
    assert metrics["At-risk customers"] == "3"
    assert metrics["Sessions today"] == "—"
    assert metrics["Open alerts"] == "2"
    assert "critical 1 · warning 1 · info 0" in [c.value for c in at.caption]
    assert any(c.value.startswith("Data as of 5 min ago") for c in at.caption)
    (chart,) = at.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["encoding"]["x"]["field"] == "risk_tier"
    risk, alerts = (df.value for df in at.dataframe)
    assert list(risk["customer_id"]) == [6, 5, 4, 3, 2, 1]
    assert risk.loc[0, "churn_probability"] == pytest.approx(0.87)  # the latest score
    assert risk.loc[0, "top_factors"] == "days_since_last_session (+0.42)"
    assert sorted(alerts["status"]) == ["acknowledged", "open", "open"]
    from app_streamlit import app

    assert app.CACHE_DOWN not in [c.value for c in at.sidebar.caption]  # Redis is up here


def test_app_works_without_redis(filled: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis down: logins are throttled in memory, the overview reads PostgreSQL directly and
    the sidebar says so in a caption."""
    from app_streamlit import app

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    reset_settings()
    monkeypatch.setattr(login_limits, "_limiters", {})
    at = _log_in(_app(), "val")
    assert not at.exception
    assert _metrics(at)["Active customers"] == "6"
    assert app.CACHE_DOWN in [c.value for c in at.sidebar.caption]  # said discreetly
    at = _log_in(_app(), "val", "not-the-password")
    assert [e.value for e in at.error] == [login.FAILED_MESSAGE]


def test_overview_empty_state_without_the_mart(app_env: str) -> None:
    with psycopg.connect(app_env, autocommit=True) as conn:
        accounts.create_user(conn, "val", PASSWORD, "viewer")
    at = _log_in(_app(), "val")
    assert not at.exception
    assert overview.EMPTY_MESSAGE in [i.value for i in at.info]
    assert overview.NO_RECOMMENDATIONS in [i.value for i in at.info]
    assert _metrics(at)["Open alerts"] == "0"
    assert _metrics(at)["Active customers"] == "—"


def test_viewer_has_no_admin_page(filled: str) -> None:
    at = _log_in(_app(), "val")
    assert _metrics(at)
    assert "Signed in as `val` (viewer)" in [m.value for m in at.sidebar.markdown]
    with pytest.raises(ValueError, match="Could not find"):
        at.switch_page("views/admin.py")


def test_admin_page_checks_the_role_itself(filled: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even if the page were reached, a viewer gets an error and no user data."""
    viewer = accounts.User(id=2, username="val", role="viewer")
    monkeypatch.setattr(session, "current_user", lambda: viewer)

    def script() -> None:
        from app_streamlit.views import admin

        admin.render()

    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["You need the admin role to open this page."]
    assert not at.dataframe
    assert not at.text_input


def test_admin_sees_and_uses_the_admin_page(filled: str) -> None:
    at = _log_in(_app(), "boss")
    assert _metrics(at)["Active customers"] == "6"
    at.switch_page("views/admin.py").run()
    assert not at.exception
    assert at.title[0].value == "Admin"
    assert sorted(at.dataframe[0].value["username"]) == ["boss", "val"]

    at.text_input(key="new_username").input("olga")
    at.text_input(key="new_password").input("olga-password-1")
    at.selectbox(key="new_role").select("operator")
    at = at.button[0].click().run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Added `olga` (operator)."]
    with psycopg.connect(filled) as conn:
        olga = accounts.get_user(conn, "olga")
    assert olga is not None
    assert olga.role == "operator"

    at.text_input(key="new_username").input("olga")
    at.text_input(key="new_password").input("olga-password-1")
    at = at.button[0].click().run()
    assert [e.value for e in at.error] == ["User 'olga' already exists."]

    # Change a role, deactivate, and the last admin cannot be demoted (all audited).
    at.selectbox(key="manage_username").select("olga")
    at.selectbox(key="manage_action").select("role")
    at.selectbox(key="manage_role").select("viewer")
    at = at.button(key="FormSubmitter:manage_user-Apply").click().run()
    assert [s.value for s in at.success] == ["`olga` is now viewer."]
    at.selectbox(key="manage_username").select("olga")
    at.selectbox(key="manage_action").select("deactivate")
    at = at.button(key="FormSubmitter:manage_user-Apply").click().run()
    assert [s.value for s in at.success] == ["`olga` is deactivated."]
    at.selectbox(key="manage_username").select("boss")
    at.selectbox(key="manage_action").select("role")
    at.selectbox(key="manage_role").select("operator")
    at = at.button(key="FormSubmitter:manage_user-Apply").click().run()
    assert "no active admin" in at.error[0].value
    with psycopg.connect(filled) as conn:
        actions = [
            r[0]
            for r in conn.execute(
                "select action from app.audit_log where username = 'boss'"
                " and action like 'user_%%' order by id"
            ).fetchall()
        ]
    assert actions == ["user_created", "user_role_changed", "user_deactivated"]


def test_login_survives_a_reload_through_the_cookie(
    filled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _log_in(_app(), "val")
    cookie_js = at.session_state["auth_cookie_js"]
    token = at.session_state["auth_token"]
    assert f"opsdash_session={token};" in cookie_js

    # A reload is a new session whose request carries the cookie.
    monkeypatch.setattr(session, "read_cookie", lambda: token)
    reloaded = _app()
    assert not reloaded.exception
    assert _metrics(reloaded)["Active customers"] == "6"
    assert not reloaded.text_input

    monkeypatch.setattr(session, "read_cookie", lambda: token[:-2] + "xx")
    forged = _app()
    assert [t.label for t in forged.text_input] == ["Username", "Password"]


def test_logout_clears_the_session_and_revokes_the_cookie(
    filled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _log_in(_app(), "val")
    token = at.session_state["auth_token"]
    at = at.sidebar.button(key="logout").click().run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert "Max-Age=0" in at.session_state["auth_cookie_js"]
    assert session.user_for_token(token) is None

    monkeypatch.setattr(session, "read_cookie", lambda: token)
    assert [t.label for t in _app().text_input] == ["Username", "Password"]


def test_password_change_ends_cookie_sessions(filled: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _log_in(_app(), "val")
    token = at.session_state["auth_token"]
    assert session.user_for_token(token) is not None
    with psycopg.connect(filled, autocommit=True) as conn:
        accounts.set_password(conn, "val", "another-password")
    assert session.user_for_token(token) is None


def test_deactivated_user_is_signed_out_on_revalidation(filled: str) -> None:
    at = _log_in(_app(), "val")
    with psycopg.connect(filled, autocommit=True) as conn:
        conn.execute("update app.users set is_active = false where username = 'val'")
    at.session_state["auth_checked_at"] = time.monotonic() - session.REVALIDATE_S - 1
    at.run()
    assert [t.label for t in at.text_input] == ["Username", "Password"]


def test_cookie_secret_is_generated_when_unset(
    app_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPSDASH_COOKIE_SECRET", "")
    monkeypatch.setenv("OPSDASH_HOME", str(tmp_path))
    reset_settings()
    assert get_settings().app_cookie_secret == ""
    secret = session.cookie_secret()
    assert (tmp_path / "cookie-secret").stat().st_mode & 0o777 == 0o600
    assert secret == (tmp_path / "cookie-secret").read_text().strip().encode()

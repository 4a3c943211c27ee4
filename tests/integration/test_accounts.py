"""Users, logins, the first admin and login throttling against a migrated scratch warehouse
and the Redis of the test environment (the throttling tests pass without Redis too)."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from opsdash_core import accounts
from opsdash_core.accounts import AuthError, UserExistsError
from opsdash_core.login_limits import (
    DelayPolicy,
    LoginLimiter,
    MemoryLoginLimiter,
    RedisLoginLimiter,
)
from opsdash_core.settings import get_settings

pytestmark = pytest.mark.integration

PASSWORD = "correct-horse-1"


@pytest.fixture
def conn(warehouse_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def limiter() -> MemoryLoginLimiter:
    """A private limiter, so these tests never lock out each other's users."""
    return MemoryLoginLimiter()


def _audit(conn: psycopg.Connection, username: str) -> list[tuple[str, dict]]:
    rows = conn.execute(
        "select action, details from app.audit_log where username = %s order by id", (username,)
    ).fetchall()
    return [(action, details) for action, details in rows]


def test_create_user_and_verify_login(
    conn: psycopg.Connection, limiter: MemoryLoginLimiter
) -> None:
    created = accounts.create_user(conn, "Alice", PASSWORD, "operator", actor="admin")
    assert (created.username, created.role, created.is_active) == ("alice", "operator", True)
    stored = conn.execute("select password_hash from app.users where username = 'alice'").fetchone()
    assert stored is not None
    assert stored[0].startswith("$2b$12$")
    assert PASSWORD not in stored[0]

    assert accounts.verify_login(conn, "alice", PASSWORD, limiter=limiter) == created
    assert accounts.verify_login(conn, "ALICE", PASSWORD, limiter=limiter) == created
    assert accounts.verify_login(conn, "alice", "wrong-password", limiter=limiter) is None
    assert accounts.verify_login(conn, "nobody", PASSWORD, limiter=limiter) is None

    last_login = conn.execute("select last_login_at from app.users where username = 'alice'")
    assert last_login.fetchone()[0] is not None  # type: ignore[index]
    actions = _audit(conn, "alice")
    assert [a for a, _ in actions] == ["login_success", "login_success", "login_failure"]
    assert actions[-1][1]["reason"] == "bad_password"
    assert _audit(conn, "nobody")[0][1]["reason"] == "unknown_user"
    assert _audit(conn, "admin") == [("user_created", {"user": "alice", "role": "operator"})]


def test_duplicate_usernames_are_refused_case_insensitively(conn: psycopg.Connection) -> None:
    accounts.create_user(conn, "bob", PASSWORD, "viewer")
    with pytest.raises(UserExistsError, match="'bob' already exists"):
        accounts.create_user(conn, "Bob", PASSWORD, "admin")
    assert conn.execute("select count(*) from app.users").fetchone() == (1,)


def test_duplicate_inside_a_caller_transaction_keeps_it_usable(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as tx_conn:
        accounts.create_user(tx_conn, "carol", PASSWORD, "viewer")
        with pytest.raises(UserExistsError):
            accounts.create_user(tx_conn, "carol", PASSWORD, "viewer")
        accounts.create_user(tx_conn, "dave", PASSWORD, "viewer")  # savepoint rolled back only
        tx_conn.commit()
        names = tx_conn.execute("select username from app.users order by 1").fetchall()
    assert names == [("carol",), ("dave",)]


def test_invalid_role_and_password_are_refused(conn: psycopg.Connection) -> None:
    with pytest.raises(AuthError, match="Role must be one of"):
        accounts.create_user(conn, "erin", PASSWORD, "root")
    with pytest.raises(AuthError, match="at least 8"):
        accounts.create_user(conn, "erin", "short", "viewer")
    assert accounts.get_user(conn, "erin") is None


def test_set_password(conn: psycopg.Connection, limiter: MemoryLoginLimiter) -> None:
    accounts.create_user(conn, "frank", PASSWORD, "viewer")
    accounts.set_password(conn, "frank", "a-new-password")
    assert accounts.verify_login(conn, "frank", PASSWORD, limiter=limiter) is None
    assert accounts.verify_login(conn, "frank", "a-new-password", limiter=limiter) is not None
    with pytest.raises(accounts.UnknownUserError):
        accounts.set_password(conn, "ghost", "a-new-password")


def test_inactive_users_cannot_log_in(
    conn: psycopg.Connection, limiter: MemoryLoginLimiter
) -> None:
    accounts.create_user(conn, "gina", PASSWORD, "viewer")
    conn.execute("update app.users set is_active = false where username = 'gina'")
    assert accounts.verify_login(conn, "gina", PASSWORD, limiter=limiter) is None
    assert _audit(conn, "gina")[-1][1]["reason"] == "inactive"


def test_ensure_admin_is_idempotent(
    conn: psycopg.Connection, limiter: MemoryLoginLimiter, tmp_path: Path
) -> None:
    password_file = tmp_path / "local" / "admin-password"
    password = accounts.ensure_admin(conn, password_file)
    assert password is not None
    assert len(password) >= 24
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password_file.read_text().strip() == password
    admin = accounts.verify_login(conn, "admin", password, limiter=limiter)
    assert admin is not None
    assert admin.role == "admin"

    assert accounts.ensure_admin(conn, password_file) is None
    assert accounts.ensure_admin(conn, tmp_path / "other") is None
    assert password_file.read_text().strip() == password
    assert not (tmp_path / "other").exists()
    assert conn.execute("select count(*) from app.users").fetchone() == (1,)


def test_ensure_admin_tightens_an_existing_file(conn: psycopg.Connection, tmp_path: Path) -> None:
    password_file = tmp_path / "admin-password"
    password_file.write_text("stale")
    password_file.chmod(0o644)
    password = accounts.ensure_admin(conn, password_file)
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password_file.read_text().strip() == password


# Three free failures, then a minute's wait: long enough that timing cannot make these flaky.
SLOW = DelayPolicy(free_failures=3, base_delay_s=60, max_delay_s=60)


def _lockout_scenario(conn: psycopg.Connection, limiter: LoginLimiter, name: str) -> None:
    accounts.create_user(conn, name, PASSWORD, "viewer")
    for _ in range(4):  # three free failures, the fourth makes the name wait
        assert accounts.verify_login(conn, name, "wrong-password", limiter=limiter) is None
    assert limiter.locked_for(name) > 0
    # Waiting: even the right password is refused, without spending a bcrypt check, and the
    # refused attempt is audited too.
    assert accounts.verify_login(conn, name, PASSWORD, limiter=limiter) is None
    reasons = [d["reason"] for a, d in _audit(conn, name) if a == "login_failure"]
    assert reasons == ["bad_password"] * 4 + ["locked"]
    limiter.reset(name)
    assert accounts.verify_login(conn, name, PASSWORD, limiter=limiter) is not None


def test_login_rate_limit_through_redis(conn: psycopg.Connection) -> None:
    """The lockout is kept in the test Redis: another limiter (another app process) sees it,
    which a limiter that fell back to its own memory could not."""
    prefix = f"opsdash:test:{uuid.uuid4().hex[:8]}"
    limiter = RedisLoginLimiter(get_settings().redis_url, policy=SLOW, prefix=prefix)
    other_process = RedisLoginLimiter(get_settings().redis_url, policy=SLOW, prefix=prefix)
    accounts.create_user(conn, "henry", PASSWORD, "viewer")
    try:
        for _ in range(4):
            assert accounts.verify_login(conn, "henry", "wrong-password", limiter=limiter) is None
        assert other_process.locked_for("henry") > 0
        assert accounts.verify_login(conn, "henry", PASSWORD, limiter=other_process) is None
    finally:
        limiter.reset("henry")
    assert accounts.verify_login(conn, "henry", PASSWORD, limiter=other_process) is not None


def test_login_rate_limit_when_redis_is_down(conn: psycopg.Connection) -> None:
    limiter = RedisLoginLimiter("redis://127.0.0.1:1/0", policy=SLOW)  # nothing listens there
    _lockout_scenario(conn, limiter, "irene")


def test_redis_limiter_is_shared_between_processes(conn: psycopg.Connection) -> None:
    """Two limiter objects (two app processes) on one Redis see each other's failures."""
    from opsdash_core.redis_client import redis_client

    url = get_settings().redis_url
    client = redis_client(url)
    assert client is not None
    assert client.ping()  # make test starts Redis: an unreachable one is a failure, not a skip
    prefix = f"opsdash:test:{uuid.uuid4().hex[:8]}"
    one, two = RedisLoginLimiter(url, prefix=prefix), RedisLoginLimiter(url, prefix=prefix)
    for _ in range(4):
        one.record_failure("jack")
    assert two.record_failure("jack") == two.policy.delay_after(5) > 0
    assert one.locked_for("jack") > 0
    one.reset("jack")
    assert two.locked_for("jack") == 0


def test_users_cli_changes_roles_disables_and_resets_passwords_audited(
    conn: psycopg.Connection,
    warehouse_url: str,
    limiter: MemoryLoginLimiter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Incident response without SQL: `opsdash users set-role|disable|enable|set-password`,
    each written to app.audit_log with the actor, the last admin protected."""
    from click.testing import CliRunner

    from opsdash_core.settings import reset_settings
    from opsdash_stack import cli

    monkeypatch.setenv("WAREHOUSE_URL", warehouse_url)
    reset_settings()
    accounts.create_user(conn, "root", PASSWORD, "admin")
    accounts.create_user(conn, "mallory", PASSWORD, "operator")

    def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
        result = CliRunner().invoke(cli.main, ["users", *args, "--user", "oncall"], input=stdin)
        return result.exit_code, result.output

    assert run("set-role", "Mallory", "viewer") == (0, "mallory is now viewer\n")
    mallory = accounts.get_user(conn, "mallory")
    assert mallory is not None
    assert mallory.role == "viewer"
    assert run("disable", "mallory") == (0, "mallory is disabled\n")
    assert accounts.verify_login(conn, "mallory", PASSWORD, limiter=limiter) is None
    assert run("set-password", "mallory", "--password-stdin", stdin="fresh-password-1\n")[0] == 0
    assert run("enable", "mallory") == (0, "mallory is enabled\n")
    assert accounts.verify_login(conn, "mallory", PASSWORD, limiter=limiter) is None
    assert accounts.verify_login(conn, "mallory", "fresh-password-1", limiter=limiter)

    code, output = run("disable", "root")  # the only active admin
    assert code != 0
    assert "no active admin" in output
    code, output = run("set-role", "nobody", "admin")
    assert code != 0
    assert "No user 'nobody'" in output
    code, output = run("set-password", "mallory", "--password-stdin", stdin="short\n")
    assert code != 0
    assert "at least 8 characters" in output

    rows = conn.execute(
        "select username, action, details->>'user', details->>'role' from app.audit_log"
        " where action in ('user_role_changed', 'user_deactivated', 'user_activated',"
        " 'password_changed') order by id"
    ).fetchall()
    assert rows == [
        ("oncall", "user_role_changed", "mallory", "viewer"),
        ("oncall", "user_deactivated", "mallory", None),
        ("oncall", "password_changed", "mallory", None),
        ("oncall", "user_activated", "mallory", None),
    ]
    assert accounts.get_user(conn, "root").is_active  # type: ignore[union-attr]

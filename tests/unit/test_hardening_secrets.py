"""Secrets stay off command lines and out of loose files: every service's argv, the generated
`.env`, the Redis config file, the PostgreSQL bootstrap password and `opsdash users add`."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from opsdash_core.settings import Settings
from opsdash_stack import cli, envfile
from opsdash_stack.probes import ServiceError
from opsdash_stack.services import mlflow, redis
from opsdash_stack.services.catalog import python_services

PG_PASSWORD = "pg-secret-Zq81"
REDIS_PASSWORD = "redis-secret-Xa72"
TOKEN = "support-secret-Wb63"
COOKIE = "cookie-secret-Vc54"


@pytest.fixture(autouse=True)
def _no_stack_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process CLI tests load the test stack's `.env` into os.environ (as `opsdash` does for
    its children), and a variable there (REDIS_URL, MLFLOW_BACKEND_URL) would win over the
    values these tests give: build their settings from those values only."""
    for field in Settings.model_fields.values():
        if field.alias:
            monkeypatch.delenv(field.alias, raising=False)


def _settings(tmp_path: Path, **extra: object) -> Settings:
    values: dict[str, Any] = {
        "OPSDASH_PG_PASSWORD": PG_PASSWORD,
        "OPSDASH_REDIS_PASSWORD": REDIS_PASSWORD,
        "SUPPORT_API_TOKEN": TOKEN,
        "OPSDASH_COOKIE_SECRET": COOKIE,
        "OPSDASH_SIM_LIVE": True,
        "SLACK_WEBHOOK_URL": "http://127.0.0.1:8025/slack/alerts",
        "opsdash_home": tmp_path,
        **extra,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("auth", [False, True])
def test_no_service_gets_a_secret_in_its_argv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auth: bool
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "mlflow-secret-Ud45")
    s = _settings(tmp_path, MLFLOW_AUTH=auth)
    services = python_services(s)
    assert {"mlflow", "support-api", "sinks", "streamlit", "dagster-webserver"} <= {
        svc.name for svc in services
    }
    secrets = (PG_PASSWORD, REDIS_PASSWORD, TOKEN, COOKIE, "mlflow-secret-Ud45")
    for svc in services:
        argv = " ".join(svc.argv)
        assert not [x for x in secrets if x in argv], svc.name


def test_mlflow_gets_its_backend_uri_by_environment(tmp_path: Path) -> None:
    svc = mlflow.service(_settings(tmp_path))
    assert "--backend-store-uri" not in svc.argv
    assert svc.env is not None
    uri = svc.env["MLFLOW_BACKEND_STORE_URI"]
    assert uri.startswith("postgresql+psycopg2://")
    assert PG_PASSWORD in uri


def test_mlflow_auth_turns_on_the_basic_auth_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "mlflow-secret-Ud45")
    assert "--app-name" not in mlflow.service(_settings(tmp_path)).argv
    svc = mlflow.service(_settings(tmp_path, MLFLOW_AUTH=True))
    assert svc.argv[svc.argv.index("--app-name") + 1] == "basic-auth"
    assert svc.env is not None
    assert svc.env["MLFLOW_AUTH_ADMIN_PASSWORD"] == "mlflow-secret-Ud45"
    ini = Path(svc.env["MLFLOW_AUTH_CONFIG_PATH"])
    assert _mode(ini) == 0o600
    assert f"sqlite:///{tmp_path}/mlflow-auth/basic_auth.db" in ini.read_text()
    # MLflow refuses to start the auth app without a static CSRF key: one generated, kept.
    key = svc.env["MLFLOW_FLASK_SERVER_SECRET_KEY"]
    assert len(key) >= 32
    assert _mode(tmp_path / "mlflow-auth" / "flask-secret-key") == 0o600
    again = mlflow.service(_settings(tmp_path, MLFLOW_AUTH=True))
    assert again.env is not None
    assert again.env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == key
    assert key not in " ".join(svc.argv)
    monkeypatch.setenv("MLFLOW_FLASK_SERVER_SECRET_KEY", "operator-chosen-key")
    chosen = mlflow.service(_settings(tmp_path, MLFLOW_AUTH=True))
    assert chosen.env is not None
    assert chosen.env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == "operator-chosen-key"


def test_env_file_is_created_0600_with_a_redis_password(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    assert envfile.ensure_env_file(path, tmp_path / ".local", port_offset=110)
    assert _mode(path) == 0o600
    values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    password = values["OPSDASH_REDIS_PASSWORD"]
    assert len(password) >= 24
    assert values["REDIS_URL"] == f"redis://:{password}@127.0.0.1:56489/0"


def test_an_older_env_file_gains_the_redis_password_and_keeps_its_keys(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("OPSDASH_PG_PASSWORD=keep-me\nREDIS_URL=redis://127.0.0.1:56379/0")
    path.chmod(0o600)
    assert not envfile.ensure_env_file(path, tmp_path, 0)
    lines = path.read_text().splitlines()
    assert lines[:2] == ["OPSDASH_PG_PASSWORD=keep-me", "REDIS_URL=redis://127.0.0.1:56379/0"]
    assert lines[2].startswith("OPSDASH_REDIS_PASSWORD=")
    assert len(lines[2]) > 40
    envfile.ensure_env_file(path, tmp_path, 0)
    assert path.read_text().splitlines() == lines  # generated once, never replaced


def test_redis_url_carries_the_password_by_default(tmp_path: Path) -> None:
    s = _settings(tmp_path, OPSDASH_REDIS_PORT=6390)
    assert s.redis_url == f"redis://:{REDIS_PASSWORD}@127.0.0.1:6390/0"


def test_redis_config_file_holds_the_password_mode_0600(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    data = tmp_path / "redis"
    data.mkdir()
    (data / "redis.conf").write_text("stale")
    (data / "redis.conf").chmod(0o644)
    conf = redis.write_config(s, data)
    assert _mode(conf) == 0o600
    text = conf.read_text()
    assert f"requirepass {REDIS_PASSWORD}" in text.splitlines()
    assert "bind 127.0.0.1" in text.splitlines()


@pytest.mark.parametrize("password", ["", "has space", 'quo"te'])
def test_redis_refuses_to_start_without_a_usable_password(tmp_path: Path, password: str) -> None:
    with pytest.raises(ServiceError, match="OPSDASH_REDIS_PASSWORD"):
        redis.config_text(_settings(tmp_path, OPSDASH_REDIS_PASSWORD=password), tmp_path)


@pytest.mark.parametrize("command", [["add", "bob"], ["set-password", "bob"]])
def test_users_commands_take_no_password_argument(command: list[str]) -> None:
    result = CliRunner().invoke(cli.main, ["users", *command, "--password", "hunter2hunter2"])
    assert result.exit_code != 0
    assert "No such option" in result.output


def test_no_users_command_has_a_password_option() -> None:
    """Whatever is added later: a password never comes from argv (`ps`, shell history)."""
    group = cli.main.commands["users"]
    assert isinstance(group, click.Group)
    assert {"add", "set-role", "disable", "enable", "set-password"} <= set(group.commands)
    for name, command in group.commands.items():
        for param in command.params:
            opts = [*param.opts, *param.secondary_opts]
            assert not any(o.lstrip("-") in {"password", "p", "pw"} for o in opts), (name, opts)


def test_users_set_password_prompts_twice_or_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    import opsdash_core.accounts as accounts
    import opsdash_core.db as db

    changed: list[tuple[str, str, str]] = []
    monkeypatch.setattr(db, "warehouse", lambda: contextlib.nullcontext(None))
    monkeypatch.setattr(
        accounts,
        "set_password",
        lambda _conn, name, password, actor: changed.append((name, password, actor)),
    )
    prompted = CliRunner().invoke(
        cli.main,
        ["users", "set-password", "bob", "--user", "ops-lead"],
        input="pw-12345678\npw-12345678\n",
    )
    assert prompted.exit_code == 0, prompted.output
    assert "pw-12345678" not in prompted.output  # hidden input
    piped = CliRunner().invoke(
        cli.main, ["users", "set-password", "bob", "--password-stdin"], input="s3cret-pass\n"
    )
    assert piped.exit_code == 0, piped.output
    assert changed[0] == ("bob", "pw-12345678", "ops-lead")
    assert changed[1][:2] == ("bob", "s3cret-pass")


def _capture_create_user(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    import contextlib

    import opsdash_core.accounts as accounts
    import opsdash_core.db as db

    created: list[tuple[str, str, str]] = []
    monkeypatch.setattr(db, "warehouse", lambda: contextlib.nullcontext(None))
    monkeypatch.setattr(
        accounts,
        "create_user",
        lambda _conn, name, password, role, actor: created.append((name, password, role)),
    )
    return created


def test_users_add_reads_the_password_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    created = _capture_create_user(monkeypatch)
    result = CliRunner().invoke(
        cli.main,
        ["users", "add", "bob", "--role", "operator", "--password-stdin"],
        input="s3cret-pass\n",
    )
    assert result.exit_code == 0, result.output
    assert created == [("bob", "s3cret-pass", "operator")]


def test_users_add_prompts_twice_for_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    created = _capture_create_user(monkeypatch)
    result = CliRunner().invoke(
        cli.main, ["users", "add", "bob"], input="pw-12345678\npw-12345678\n"
    )
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    assert created == [("bob", "pw-12345678", "viewer")]

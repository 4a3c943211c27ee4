"""The MLflow tracking server (model registry), backed by the `mlflow` PostgreSQL database.

The backend URI holds the database password, so it goes through the environment
(`MLFLOW_BACKEND_STORE_URI`, which `mlflow server` reads for `--backend-store-uri`), never argv:
every local user can read any process's command line.

`MLFLOW_AUTH=true` puts MLflow's basic-auth app in front of the server: every request then
needs a user. The admin is created on the first start from `MLFLOW_TRACKING_USERNAME` /
`MLFLOW_TRACKING_PASSWORD` (set both in `.env`; opsdash's own MLflow clients send them too);
users and permissions live in `OPSDASH_HOME/mlflow-auth/basic_auth.db`, its CSRF key in
`flask-secret-key` there (generated, 0600) unless `MLFLOW_FLASK_SERVER_SECRET_KEY` is set. The
auth app needs the `mlflow[auth]` extra (Flask-WTF, in `uv.lock`).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from opsdash_core.settings import Settings
from opsdash_stack.supervisor import Service, venv_bin

ENV = {
    # A connection per request: pooled ones die with a PostgreSQL restart and would fail the
    # next request each; MLflow's traffic here is a few requests a minute.
    "MLFLOW_SQLALCHEMYSTORE_POOLCLASS": "NullPool",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}


def service(s: Settings) -> Service:
    env = {
        **ENV,
        "MLFLOW_BACKEND_STORE_URI": s.mlflow_backend_url.replace(
            "postgresql://", "postgresql+psycopg2://", 1
        ),
    }
    argv = [
        venv_bin("mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(s.mlflow_port),
        "--workers",
        "1",
        "--artifacts-destination",
        str(s.opsdash_home / "mlflow-artifacts"),
        "--allowed-hosts",
        f"127.0.0.1:{s.mlflow_port},localhost:{s.mlflow_port}",
    ]
    if s.mlflow_auth:
        argv += ["--app-name", "basic-auth"]
        env.update(_auth_env(s))
    # On a busy 2-core machine the server has been seen to need more than 120 s to answer.
    return Service(
        "mlflow", argv, s.mlflow_port, f"http://127.0.0.1:{s.mlflow_port}/health", 300, env
    )


def _auth_env(s: Settings) -> dict[str, str]:
    """The basic-auth app's config file, CSRF key and first admin (by environment, never
    argv)."""
    directory = s.opsdash_home / "mlflow-auth"
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(_auth_config(directory)),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": _flask_secret_key(directory),
    }
    # Without both, MLflow refuses to start on an empty user store and says so in its log.
    for ours, theirs in (
        ("MLFLOW_TRACKING_USERNAME", "MLFLOW_AUTH_ADMIN_USERNAME"),
        ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD"),
    ):
        if os.environ.get(ours):
            env[theirs] = os.environ[ours]
    return env


def _auth_config(directory: Path) -> Path:
    """basic_auth.ini with a user store under OPSDASH_HOME (no secret in it; 0600 anyway)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / "basic_auth.ini"
    text = (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{directory / 'basic_auth.db'}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    if not path.exists() or path.read_text() != text:
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    return path


def _flask_secret_key(directory: Path) -> str:
    """The basic-auth app's CSRF key: MLflow refuses to start without a static one. The
    operator's `MLFLOW_FLASK_SERVER_SECRET_KEY` if set, else one generated into a 0600 file
    on the first start and kept (a new key each start would void forms open in a browser)."""
    if os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY"):
        return os.environ["MLFLOW_FLASK_SERVER_SECRET_KEY"]
    path = directory / "flask-secret-key"
    key = path.read_text().strip() if path.exists() else ""
    if not key:  # none yet, or an interrupted first write
        path.unlink(missing_ok=True)
        key = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
    return key

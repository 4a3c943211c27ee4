"""The `.env` file that `make up` writes once: generated secrets and the default URLs.

It is written only when missing, keys are never overwritten, and it is created mode 600 (never
chmod-ed after a write), so a second `make up` reuses the same passwords and tokens. A secret
added in a later release (the Redis password) is appended to an existing file, again without
touching the keys already there. So are the service roles' URLs (README "Security"); the two
keys an older release filled with the superuser's URL (Dagster's and MLflow's storage) move to
their roles while they still hold exactly that generated value.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _defaults(home: Path, port_offset: int) -> dict[str, str]:
    pg_password = secrets.token_urlsafe(18)
    pg_port = 55432 + port_offset
    redis_password = secrets.token_urlsafe(24)
    redis_port = 56379 + port_offset
    base = f"postgresql://opsdash:{pg_password}@127.0.0.1:{pg_port}"
    roles = role_urls(pg_port)
    http_sink = 8025 + port_offset
    return {
        "OPSDASH_HOME": str(home),
        "OPSDASH_PG_PORT": str(pg_port),
        "OPSDASH_PG_USER": "opsdash",
        "OPSDASH_PG_PASSWORD": pg_password,
        "OPSDASH_REDIS_PORT": str(redis_port),
        "OPSDASH_REDIS_PASSWORD": redis_password,
        "DAGSTER_PORT": str(3000 + port_offset),
        "MLFLOW_PORT": str(5000 + port_offset),
        "STREAMLIT_PORT": str(8501 + port_offset),
        "SUPPORT_API_PORT": str(8100 + port_offset),
        # The superuser's: migrations, set-up and the operator's CLI only.
        "WAREHOUSE_URL": f"{base}/ops",
        "SOURCE_URL": f"{base}/marketplace",
        # One role per service (README "Security"); `opsdash up` sets these passwords.
        **roles,
        "REDIS_URL": f"redis://:{redis_password}@127.0.0.1:{redis_port}/0",
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{5000 + port_offset}",
        "SUPPORT_API_URL": f"http://127.0.0.1:{8100 + port_offset}",
        "SUPPORT_API_TOKEN": secrets.token_urlsafe(24),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(1025 + port_offset),
        "ALERT_EMAIL_FROM": "opsdash@localhost",
        "ALERT_EMAIL_TO": "ops-team@localhost",
        "SLACK_WEBHOOK_URL": f"http://127.0.0.1:{http_sink}/slack/alerts",
        "OPSDASH_SINK_HTTP_PORT": str(http_sink),
        "OPSDASH_COOKIE_SECRET": secrets.token_urlsafe(32),
    }


# Secrets that an `.env` written by an older release may lack: appended, never replaced.
# (REDIS_URL without a password still works: the client adds OPSDASH_REDIS_PASSWORD.)
LATER_SECRETS = ("OPSDASH_REDIS_PASSWORD",)

# Each service's own PostgreSQL role (migration 0013): key -> (role, database).
ROLE_URLS = {
    "APP_DATABASE_URL": ("opsdash_app", "ops"),
    "PIPELINE_DATABASE_URL": ("opsdash_pipeline", "ops"),
    "SOURCE_READER_URL": ("opsdash_source_reader", "marketplace"),
    "DAGSTER_PG_URL": ("opsdash_dagster", "dagster"),
    "MLFLOW_BACKEND_URL": ("opsdash_mlflow", "mlflow"),
}
# Keys an older release filled with the superuser's URL: moved to their role while they still
# hold exactly that generated value (an edited value is the operator's and stays).
SUPERUSER_DEFAULTS = ("DAGSTER_PG_URL", "MLFLOW_BACKEND_URL")


def role_urls(pg_port: int | str) -> dict[str, str]:
    """A URL with a fresh generated password for every service role."""
    return {
        key: f"postgresql://{role}:{secrets.token_urlsafe(18)}@127.0.0.1:{pg_port}/{db}"
        for key, (role, db) in ROLE_URLS.items()
    }


def ensure_env_file(path: Path, home: Path, port_offset: int = 0) -> bool:
    """Create `path` with generated defaults if it does not exist; returns True if created.

    An existing file only gains the generated secrets it lacks (see `LATER_SECRETS`)."""
    if path.exists():
        _append_missing_secrets(path)
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written once by `make up`; edit freely. Point SOURCE_URL / SUPPORT_API_URL at real",
        "# systems to switch the simulator off. Secrets live here, never in git.",
    ]
    lines += [f"{k}={v}" for k, v in _defaults(home, port_offset).items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return True


def _values(text: str) -> dict[str, str]:
    values = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def _append_missing_secrets(path: Path) -> None:
    _move_superuser_defaults(path)
    text = path.read_text()
    present = _values(text)
    missing = [k for k in LATER_SECRETS if k not in present]
    lines = [f"{k}={secrets.token_urlsafe(24)}" for k in missing]
    roles = role_urls(present.get("OPSDASH_PG_PORT", "55432"))
    lines += [f"{k}={v}" for k, v in roles.items() if k not in present]
    if not lines:
        return
    if text and not text.endswith("\n"):
        lines.insert(0, "")
    # O_APPEND on the existing (0600) file: the new secret is never in a looser file.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
    with os.fdopen(fd, "a") as fh:
        fh.write("\n".join(lines) + "\n")


def _move_superuser_defaults(path: Path) -> None:
    """Point the keys of `SUPERUSER_DEFAULTS` that still hold the superuser URL an older release
    generated at their roles (a new 0600 file replaces the old one in one rename)."""
    text = path.read_text()
    values = _values(text)
    user, password = values.get("OPSDASH_PG_USER", "opsdash"), values.get("OPSDASH_PG_PASSWORD")
    port = values.get("OPSDASH_PG_PORT", "55432")
    if not password:
        return
    fresh = role_urls(port)
    old_base = f"postgresql://{user}:{password}@127.0.0.1:{port}"
    out, changed = [], False
    for raw in text.splitlines():
        key = raw.split("=", 1)[0].strip() if "=" in raw else ""
        _, db = ROLE_URLS.get(key, ("", ""))
        if key in SUPERUSER_DEFAULTS and values.get(key) == f"{old_base}/{db}":
            out.append(f"{key}={fresh[key]}")
            changed = True
        else:
            out.append(raw)
    if not changed:
        return
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(out) + "\n")
    tmp.replace(path)


# What `load_into_environ` exported, so that a second load (after `ensure_env_file` changed the
# file) refreshes its own values but never one the caller's environment set.
_EXPORTED: dict[str, str] = {}


def load_into_environ(path: Path) -> None:
    """Export the file's keys into this process (for child services), without overriding the
    caller's environment."""
    if not path.exists():
        return
    for key, value in _values(path.read_text()).items():
        if key not in os.environ or _EXPORTED.get(key) == os.environ[key]:
            os.environ[key] = value
            _EXPORTED[key] = value

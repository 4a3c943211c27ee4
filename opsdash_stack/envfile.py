"""The `.env` file that `make up` writes once: generated secrets and the default URLs.

It is written only when missing, keys are never overwritten, and it is created mode 600 (never
chmod-ed after a write), so a second `make up` reuses the same passwords and tokens. A secret
added in a later release (the Redis password) is appended to an existing file, again without
touching the keys already there.
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
        "WAREHOUSE_URL": f"{base}/ops",
        "SOURCE_URL": f"{base}/marketplace",
        "DAGSTER_PG_URL": f"{base}/dagster",
        "MLFLOW_BACKEND_URL": f"{base}/mlflow",
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


def _append_missing_secrets(path: Path) -> None:
    text = path.read_text()
    present = {line.split("=", 1)[0].strip() for line in text.splitlines()}
    missing = [k for k in LATER_SECRETS if k not in present]
    if not missing:
        return
    lines = [f"{k}={secrets.token_urlsafe(24)}" for k in missing]
    if text and not text.endswith("\n"):
        lines.insert(0, "")
    # O_APPEND on the existing (0600) file: the new secret is never in a looser file.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
    with os.fdopen(fd, "a") as fh:
        fh.write("\n".join(lines) + "\n")


def load_into_environ(path: Path) -> None:
    """Export the file's keys into this process (for child services), without overriding."""
    if not path.exists():
        return
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        os.environ.setdefault(key.strip(), value.strip())

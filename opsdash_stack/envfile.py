"""The `.env` file that `make up` writes once: generated secrets and the default URLs.

It is written only when missing, keys are never overwritten, and it is mode 600, so a second
`make up` reuses the same passwords and tokens.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _defaults(home: Path, port_offset: int) -> dict[str, str]:
    pg_password = secrets.token_urlsafe(18)
    pg_port = 55432 + port_offset
    base = f"postgresql://opsdash:{pg_password}@127.0.0.1:{pg_port}"
    http_sink = 8025 + port_offset
    return {
        "OPSDASH_HOME": str(home),
        "OPSDASH_PG_PORT": str(pg_port),
        "OPSDASH_PG_USER": "opsdash",
        "OPSDASH_PG_PASSWORD": pg_password,
        "OPSDASH_REDIS_PORT": str(56379 + port_offset),
        "DAGSTER_PORT": str(3000 + port_offset),
        "MLFLOW_PORT": str(5000 + port_offset),
        "STREAMLIT_PORT": str(8501 + port_offset),
        "SUPPORT_API_PORT": str(8100 + port_offset),
        "WAREHOUSE_URL": f"{base}/ops",
        "SOURCE_URL": f"{base}/marketplace",
        "DAGSTER_PG_URL": f"{base}/dagster",
        "MLFLOW_BACKEND_URL": f"{base}/mlflow",
        "REDIS_URL": f"redis://127.0.0.1:{56379 + port_offset}/0",
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


def ensure_env_file(path: Path, home: Path, port_offset: int = 0) -> bool:
    """Create `path` with generated defaults if it does not exist; returns True if created."""
    if path.exists():
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

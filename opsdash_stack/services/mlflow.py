"""The MLflow tracking server (model registry), backed by the `mlflow` PostgreSQL database."""

from __future__ import annotations

from opsdash_core.settings import Settings
from opsdash_stack.supervisor import Service, venv_bin

ENV = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}


def service(s: Settings) -> Service:
    return Service(
        "mlflow",
        [
            venv_bin("mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(s.mlflow_port),
            "--workers",
            "1",
            "--backend-store-uri",
            s.mlflow_backend_url.replace("postgresql://", "postgresql+psycopg2://", 1),
            "--artifacts-destination",
            str(s.opsdash_home / "mlflow-artifacts"),
            "--allowed-hosts",
            f"127.0.0.1:{s.mlflow_port},localhost:{s.mlflow_port}",
        ],
        s.mlflow_port,
        f"http://127.0.0.1:{s.mlflow_port}/health",
        120,
        ENV,
    )

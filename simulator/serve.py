"""Run the simulated support API in a child process for one block (benchmarks, tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from opsdash_core.services import http_ok, wait_for
from opsdash_core.settings import PROJECT_ROOT


@contextmanager
def support_api_process(source_url: str, port: int, rate_limit: int = 1000) -> Iterator[str]:
    """The support API serving `source_url` on 127.0.0.1:`port`; yields its base URL."""
    env = {**os.environ, "SOURCE_URL": source_url, "SUPPORT_API_RATE_LIMIT": str(rate_limit)}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "uvicorn"),
            "simulator.support_api:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=PROJECT_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_ok(f"{url}/health"), "support API", 30)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)

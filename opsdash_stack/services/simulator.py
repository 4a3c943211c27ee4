"""The simulated outside world: the support API (uvicorn) and the live marketplace writer.

Both run only while the simulator is enabled, i.e. while SOURCE_URL / SUPPORT_API_URL point at
the local simulated systems.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from opsdash_core.db import service_env
from opsdash_core.settings import PROJECT_ROOT, Settings
from opsdash_stack.probes import http_ok, wait_for
from opsdash_stack.supervisor import Service, venv_bin


def _support_api_argv(port: int) -> list[str]:
    return [
        venv_bin("uvicorn"),
        "simulator.support_api:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def support_api(s: Settings) -> Service:
    return Service(
        "support-api",
        _support_api_argv(s.support_api_port),
        s.support_api_port,
        f"http://127.0.0.1:{s.support_api_port}/health",
        30,
        service_env(s, "source_reader"),  # SELECT on the source, nothing more
    )


def live(s: Settings) -> Service:
    """`opsdash sim live`: keeps writing sessions, customers and calls into the source DB."""
    return Service("simulator-live", [venv_bin("opsdash"), "sim", "live"], None, None)


@contextmanager
def support_api_process(source_url: str, port: int, rate_limit: int = 1000) -> Iterator[str]:
    """The support API serving `source_url` on 127.0.0.1:`port` for one block (tests, benchmarks);
    yields its base URL and stops the child process afterwards."""
    env = {**os.environ, "SOURCE_URL": source_url, "SUPPORT_API_RATE_LIMIT": str(rate_limit)}
    proc = subprocess.Popen(_support_api_argv(port), env=env, cwd=PROJECT_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_ok(f"{url}/health"), "support API", 30)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)

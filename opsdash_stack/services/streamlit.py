"""The Streamlit operations app (`app_streamlit/app.py`), headless on 127.0.0.1."""

from __future__ import annotations

from opsdash_core.settings import PROJECT_ROOT, Settings
from opsdash_stack.supervisor import Service, venv_bin


def service(s: Settings) -> Service:
    return Service(
        "streamlit",
        [
            venv_bin("streamlit"),
            "run",
            str(PROJECT_ROOT / "app_streamlit" / "app.py"),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(s.streamlit_port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        s.streamlit_port,
        f"http://127.0.0.1:{s.streamlit_port}/_stcore/health",
        60,
    )

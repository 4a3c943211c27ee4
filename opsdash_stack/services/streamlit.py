"""The Streamlit operations app (`app_streamlit/app.py`), headless on 127.0.0.1.

Security flags: the websocket answers only the host names in `STREAMLIT_ALLOWED_HOSTS`
(DNS-rebinding defence; default 127.0.0.1 and localhost) and users never see tracebacks
(`client.showErrorDetails none`; the app shows its own message when PostgreSQL is down); tables
have no built-in CSV download (`client.disableDataExport`: the audited, formula-neutralized
export in `app_streamlit/exports.py` is the only one).
"""

from __future__ import annotations

from opsdash_core.db import service_env
from opsdash_core.settings import PROJECT_ROOT, Settings
from opsdash_stack.supervisor import Service, venv_bin


def allowed_hosts(s: Settings) -> list[str]:
    return [h.strip() for h in s.app_allowed_hosts.split(",") if h.strip()]


def service(s: Settings) -> Service:
    host_flags = [flag for host in allowed_hosts(s) for flag in ("--server.allowedHosts", host)]
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
            "--client.showErrorDetails",
            "none",
            # Magic ast-parses every page script; CPython 3.11's AST conversion races between
            # sessions' threads (SystemError), and the app uses no magic.
            "--runner.magicEnabled",
            "false",
            # No CSV download in st.dataframe's toolbar (unaudited, not formula-neutralized):
            # exports go through app_streamlit/exports.py only.
            "--client.disableDataExport",
            "true",
            *host_flags,
        ],
        s.streamlit_port,
        f"http://127.0.0.1:{s.streamlit_port}/_stcore/health",
        60,
        service_env(s, "app"),  # connects as opsdash_app (least privilege)
    )

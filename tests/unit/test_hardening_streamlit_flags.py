"""`opsdash up` starts Streamlit with the security flags (findings 11 and 13): the websocket
answers only the allowed host names (DNS rebinding) and users never see tracebacks. The flags
win over any config file, so they are checked on the command line itself; the integration test
test_hardening_streamlit_hosts checks that the running server refuses a foreign Host."""

from __future__ import annotations

import tomllib

import pytest

from opsdash_core.settings import PROJECT_ROOT, Settings
from opsdash_stack.services import streamlit as streamlit_service


def _flag_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def test_allowed_hosts_default_to_loopback_names() -> None:
    argv = streamlit_service.service(Settings(_env_file=None)).argv  # type: ignore[call-arg]
    assert _flag_values(argv, "--server.allowedHosts") == ["127.0.0.1", "localhost"]
    assert _flag_values(argv, "--server.address") == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("ops.example.com, 127.0.0.1", ["ops.example.com", "127.0.0.1"]),
        ("localhost,,  ", ["localhost"]),
    ],
)
def test_allowed_hosts_come_from_the_setting(configured: str, expected: list[str]) -> None:
    s = Settings(_env_file=None, STREAMLIT_ALLOWED_HOSTS=configured)  # type: ignore[call-arg]
    argv = streamlit_service.service(s).argv
    assert _flag_values(argv, "--server.allowedHosts") == expected


def test_error_details_are_off_and_magic_is_off() -> None:
    argv = streamlit_service.service(Settings(_env_file=None)).argv  # type: ignore[call-arg]
    assert _flag_values(argv, "--client.showErrorDetails") == ["none"]
    assert _flag_values(argv, "--browser.gatherUsageStats") == ["false"]
    assert _flag_values(argv, "--server.headless") == ["true"]


def test_the_apps_own_config_says_the_same() -> None:
    """A plain `streamlit run app_streamlit/app.py` (no flags) gets the same protection."""
    config = tomllib.loads(
        (PROJECT_ROOT / "app_streamlit" / ".streamlit" / "config.toml").read_text()
    )
    assert config["server"]["allowedHosts"] == ["127.0.0.1", "localhost"]
    assert config["server"]["address"] == "127.0.0.1"
    assert config["client"]["showErrorDetails"] == "none"

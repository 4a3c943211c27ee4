"""Is a service up yet? Port and HTTP probes, and waiting on them with a deadline."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path


class ServiceError(RuntimeError):
    """A service could not be started or did not answer in time."""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on `host:port`."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when `url` answers with any non-5xx status (the server is up, whatever it says)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URLs
            return 200 <= resp.status < 500
    except OSError:
        return False


def wait_for(
    check: Callable[[], bool],
    what: str,
    timeout: float,
    log_file: Path | None = None,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll `check` until it holds; raise ServiceError with the tail of `log_file` on timeout,
    or at once when `alive` says the process being waited for has exited (a service that
    dies on start - a taken port, a bad setting - should not cost the whole timeout)."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise ServiceError(
                f"{what} exited {time.monotonic() - started:.0f}s after it started{_tail(log_file)}"
            )
        time.sleep(0.5)
    raise ServiceError(f"{what} did not answer within {timeout:.0f}s{_tail(log_file)}")


def _tail(log_file: Path | None) -> str:
    if not log_file or not log_file.exists():
        return ""
    lines = log_file.read_text(errors="replace").splitlines()[-25:]
    return f"\n--- last lines of {log_file} ---\n" + "\n".join(lines)

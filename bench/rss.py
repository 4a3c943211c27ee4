"""Peak resident memory per process of one opsdash stack, sampled from /proc.

The target is per process ("memory stays under 8 GiB for every process"), so the peak kept per
kind of process is the largest single process of that kind, not a sum. A process belongs to the
stack when its environment names the stack's OPSDASH_HOME (every Python service, Dagster run,
dbt child) or when it descends from one of the given root pids (the PostgreSQL postmaster, which
runs as another user with its own environment, and its backends).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# (substring of the command line, label), first match wins
KINDS: tuple[tuple[str, str], ...] = (
    ("job execute", "cold build (dagster job execute first_build)"),
    ("forkserver", "cold build step (forked from the forkserver)"),
    ("asset materialize", "cold build (dagster asset materialize)"),
    ("execute_run", "Dagster run process"),
    ("api execute", "Dagster run process"),
    ("dagster-daemon", "Dagster daemon"),
    ("dagster_ui", "Dagster webserver"),
    ("dagster-webserver", "Dagster webserver"),
    ("code-server", "Dagster code server"),
    ("grpc", "Dagster code server"),
    ("dbt", "dbt"),
    ("sim generate", "simulator generate"),
    ("sim live", "simulator live"),
    ("mlflow", "MLflow"),
    ("streamlit", "Streamlit"),
    ("redis-server", "Redis"),
    ("postgres", "PostgreSQL process"),
)


def label(cmdline: str) -> str:
    for needle, name in KINDS:
        if needle in cmdline:
            return name
    first = cmdline.split(" ", 1)[0]
    return Path(first).name or "?"


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _rss_kb(pid: str) -> int:
    fields = _read(f"/proc/{pid}/statm").split()
    return int(fields[1]) * PAGE_KB if len(fields) > 1 else 0


def _ppid(pid: str) -> str:
    stat = _read(f"/proc/{pid}/stat")
    tail = stat.rsplit(b")", 1)[-1].split()
    return tail[1].decode() if len(tail) > 1 else "0"


class PeakRss:
    """A sampling thread; `peaks` maps a process kind to (peak KiB, command line)."""

    def __init__(self, home: Path, roots: set[int] | None = None, every_s: float = 1.0) -> None:
        self.marker = f"OPSDASH_HOME={home}".encode()
        self.roots = {str(p) for p in roots or set()}
        self.every_s = every_s
        self.peaks: dict[str, tuple[int, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def add_root(self, pid: int) -> None:
        self.roots.add(str(pid))

    def sample(self) -> None:
        pids = [p.name for p in Path("/proc").iterdir() if p.name.isdigit()]
        parent = {p: _ppid(p) for p in pids}
        mine: set[str] = set()
        for pid in pids:
            environ = _read(f"/proc/{pid}/environ")
            if self.marker + b"\0" in environ + b"\0" or pid in self.roots:
                mine.add(pid)
        for pid in pids:  # descendants of a root (the postmaster's backends)
            seen, p = 0, pid
            while p not in ("0", "1") and seen < 64:
                if p in self.roots:
                    mine.add(pid)
                    break
                p, seen = parent.get(p, "0"), seen + 1
        for pid in mine:
            cmd = _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").decode(errors="replace")
            if not cmd.strip():
                continue
            kind, kb = label(cmd), _rss_kb(pid)
            if kb > self.peaks.get(kind, (0, ""))[0]:
                self.peaks[kind] = (kb, cmd.strip()[:120])

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.sample()
            except Exception:  # a process vanishing mid-read must not end the sampling
                continue

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

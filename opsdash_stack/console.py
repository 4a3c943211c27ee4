"""What the tooling prints for an operator while it starts or stops things."""

from __future__ import annotations


def log(msg: str) -> None:
    """One `[opsdash] ...` line, flushed at once so it interleaves with child-process output."""
    print(f"[opsdash] {msg}", flush=True)

"""A bench's own opsdash stack on its own home and ports, shared by the benches that measure a
running product (alert latency, the live cycle, scale)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from bench.common import BIN
from opsdash_core.settings import PROJECT_ROOT

CADENCE_SETTINGS = ("OPSDASH_CYCLE_MINUTES", "OPSDASH_SUPPORT_CALLS_MINUTES")


def stack_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the bench's stack: no variable of the caller's instance (names from
    .env.example) leaks in, as scripts/test.sh does; `extra` on top."""
    names = set(
        re.findall(r"^#? *([A-Z][A-Z0-9_]*)=", (PROJECT_ROOT / ".env.example").read_text(), re.M)
    )
    env = {k: v for k, v in os.environ.items() if k not in names}
    env |= {"OPSDASH_HOME": str(home), "OPSDASH_ENV_FILE": str(home / ".env")}
    return env | (extra or {})


def env_file(home: Path) -> dict[str, str]:
    """The stack's `.env` as a dict (the last value of a key wins, as for the settings)."""
    pairs = (
        line.split("=", 1)
        for line in (home / ".env").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


def start_stack(
    env: dict[str, str], home: Path, offset: int, scale: int, days: int, bench: str
) -> None:
    """`opsdash up` with its output in a file (the services it starts outlive it, and a pipe
    they inherited would never reach end-of-file); then the cadences the services took from
    up's environment go into the stack's `.env`, for a later `opsdash up` or `--reuse`."""
    log = home / "bench-up.log"
    args = ["up", "--port-offset", str(offset), "--scale", str(scale), "--days", str(days)]
    with log.open("w") as out:
        done = subprocess.run(
            [str(BIN / "opsdash"), *args], env=env, cwd=PROJECT_ROOT, stdout=out, stderr=out
        )
    if done.returncode:
        raise SystemExit(f"opsdash up failed; see {log}")
    conf = env_file(home)
    extra = [f"{k}={env[k]}" for k in CADENCE_SETTINGS if k in env and k not in conf]
    if extra:
        with (home / ".env").open("a") as f:
            f.write(f"# {bench}: cadences\n" + "\n".join(extra) + "\n")

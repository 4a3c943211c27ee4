"""Code-location import benchmark: how long a Dagster process takes to load opsdash.

    .venv/bin/python -m bench.bench_import [--runs 5]

Every Dagster process (webserver, daemon, each run, each schedule and sensor tick's code
server) imports `orchestration.definitions` first. Each run here is a fresh interpreter
(a cold import), timed from start to exit; the figure is the median.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

from opsdash_core.settings import PROJECT_ROOT

MODULE = "orchestration.definitions"


def cold_import_seconds(module: str = MODULE) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one fresh interpreter importing `module`.
    CPU time stays meaningful when other work shares the cores; wall time is what users wait."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, cwd=PROJECT_ROOT)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = [cold_import_seconds() for _ in range(args.runs)]
    wall = [w for w, _ in runs]
    cpu = [c for _, c in runs]
    print(
        f"import {MODULE}: median {statistics.median(wall):.2f} s wall"
        f" ({statistics.median(cpu):.2f} s CPU) of {args.runs} cold imports"
        f" (wall min {min(wall):.2f} s, max {max(wall):.2f} s)"
    )


if __name__ == "__main__":
    main()

"""Simulator benchmark: `opsdash sim generate` at S1 (100,000 customers x 180 days) into a
scratch database, measured end to end (process start, model, COPY, indexes, ANALYZE).

    .venv/bin/python -m bench.bench_simulator [--scale 100000] [--days 180] [--seed 42]

Target: under 2 minutes on the 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import psycopg
from psycopg import sql

from opsdash_core.settings import PROJECT_ROOT, get_settings
from simulator.pgcopy import ident
from simulator.sourcedb import SOURCE_TABLES, scratch_database

TARGET_SECONDS = 120
TRUTH = ("truth.customer_outcomes", "truth.tutor_quality", "truth.customer_latent")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with scratch_database(get_settings().source_url, "bench_sim") as url:
        started = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from simulator.cli import sim; sim()",
                "generate",
                "--scale",
                str(args.scale),
                "--days",
                str(args.days),
                "--seed",
                str(args.seed),
            ],
            env={**os.environ, "SOURCE_URL": url},
            cwd=PROJECT_ROOT,
            check=True,
        )
        wall = time.monotonic() - started
        with psycopg.connect(url) as conn:
            counts = {
                t: conn.execute(sql.SQL("select count(*) from {}").format(ident(t))).fetchone()[0]
                for t in (*SOURCE_TABLES, *TRUTH)
            }
            per_day = conn.execute(
                "select count(*) / %s::float from tutoring_sessions "
                "where scheduled_at < (select history_end from truth.generation)",
                (args.days,),
            ).fetchone()[0]
    total = sum(counts.values())
    print(f"\nsimulator generate, scale {args.scale:,} x {args.days} days (seed {args.seed})")
    for table, n in counts.items():
        print(f"  {table:<28} {n:>12,}")
    print(f"  {'total':<28} {total:>12,}")
    print(f"  sessions/day (history)       {per_day:>12,.0f}  (target {args.scale * 0.03:,.0f})")
    print(
        f"  wall time                    {wall:>12.1f} s  (target < {TARGET_SECONDS} s: "
        f"{'ok' if wall < TARGET_SECONDS else 'MISSED'})"
    )
    print(f"  throughput                   {total / wall:>12,.0f} rows/s")


if __name__ == "__main__":
    main()

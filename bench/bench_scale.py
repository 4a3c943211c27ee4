"""The whole product at S1 and S10, side by side in one table (issue 14, point 4).

    .venv/bin/python -m bench.bench_scale [--scale 100000 --scale 1000000] [--cycles 4]

For each scale, a stack of its own (home `.local/bench-scale-<n>`, ports shifted by
--port-offset) goes through what a new user's `make up SCALE=n` does, timed in stages:
  1. `opsdash up --infra-only` (PostgreSQL, Redis, migrations);
  2. `opsdash sim generate` — generation rows/s (rows in the source afterwards / wall time);
  3. `opsdash up` — the cold build (one materialization of every asset); its total and per
     stage come from Dagster's own event log (ingest, checks, dbt, forecasts, churn ...), and
     initial ingestion rows/s is raw rows loaded / the ingest steps' wall time;
  4. with every service and `sim live` running at a 1-minute cadence
     (OPSDASH_CYCLE_MINUTES=1, OPSDASH_SUPPORT_CALLS_MINUTES=1), --cycles incremental cycles
     are awaited and their p50/p95 read from Dagster's run records: launch (tick to process
     start; for a cycle the schedule queued while the previous one ran, from that one's end),
     set-up (process start to first step: start-up and code import), ingest, checks, dbt,
     total;
  5. the code location's cold import (a fresh interpreter, median of 3);
  6. peak RSS per kind of process over the whole run, sampled from /proc every second.
Then the stack is stopped and its home removed (`--keep` leaves it).

Noise: this machine has two cores; anything else running moves every wall-clock figure, most
of all the launch delay and the cycle total. Read the
load average printed with each column; CPU-bound stages (generation, dbt) scale with it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg import sql

from bench.bench_import import cold_import_seconds
from bench.common import BIN
from bench.dagster_records import RunRecord, p50_p95, pct, rows_read, runs
from bench.rss import PeakRss
from bench.stack import CADENCE_SETTINGS, env_file, stack_env
from opsdash_core.settings import PROJECT_ROOT
from opsdash_stack.services.postgres import root_cluster_dir
from simulator.pgcopy import ident
from simulator.sourcedb import SOURCE_TABLES

COLD_BUILD_TARGET_S = 300
CYCLE_TARGET_P95_S = 20
RSS_LIMIT_KB = 8 * 1024 * 1024
STAGES = ("ingest", "checks", "dbt", "forecasts", "churn training", "churn scoring")


def opsdash(args: list[str], env: dict[str, str], log: Path) -> float:
    """Wall seconds of an `opsdash` command, output to a file (services it starts outlive it
    and would hold a pipe open); fails loudly with the log's tail."""
    started = time.monotonic()
    with log.open("a") as out:
        done = subprocess.run(
            [str(BIN / "opsdash"), *args], env=env, cwd=PROJECT_ROOT, stdout=out, stderr=out
        )
    if done.returncode:
        tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
        raise SystemExit(f"opsdash {' '.join(args)} failed (exit {done.returncode}):\n{tail}")
    return time.monotonic() - started


def count_rows(url: str, tables: list[str]) -> int:
    with psycopg.connect(url) as conn:
        return sum(
            conn.execute(sql.SQL("select count(*) from {}").format(ident(t))).fetchone()[0]  # type: ignore[index]
            for t in tables
        )


def raw_tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select 'raw.' || table_name from information_schema.tables "
            "where table_schema = 'raw' and table_type = 'BASE TABLE' "
            "and table_name not in ('quarantine', 'watermarks', 'ingest_log')"
        ).fetchall()
    return [r[0] for r in rows]


def postmaster_pid(env: dict[str, str]) -> int | None:
    """The cluster's postmaster (it runs as `postgres` with an environment of its own)."""
    code = (
        "from opsdash_core.settings import get_settings;"
        "from opsdash_stack.services.postgres import data_dir;"
        "print(data_dir(get_settings()))"
    )
    out = subprocess.run(
        [str(BIN / "python"), "-c", code],
        env=env,
        cwd=PROJECT_ROOT,
        text=True,
        capture_output=True,
        check=False,
    )
    try:
        return int((Path(out.stdout.strip()) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cold_build(dagster_url: str) -> RunRecord | None:
    """The first build's run: the `first_build` job `opsdash up` executes (before it, an
    implicit asset job of `dagster asset materialize`); no schedule or sensor launches it."""
    with psycopg.connect(dagster_url) as conn:
        every = runs(conn)
    return next(
        (r for r in every if r.job == "first_build" or r.job.startswith("__ASSET_JOB")), None
    )


def verdict(seconds: float, target: float = COLD_BUILD_TARGET_S) -> str:
    """'meets', or by how much it misses (ratio and seconds over)."""
    if seconds < target:
        return "meets"
    return f"misses by {seconds / target:.2f}x, +{seconds - target:.0f} s"


def short(step: str) -> str:
    """A step key as a person reads it: `raw__sessions` -> `raw/sessions`."""
    return step.replace("__", "/")


def wait_cycles(dagster_url: str, since: float, n: int, timeout_s: float) -> list[RunRecord]:
    deadline = time.monotonic() + timeout_s
    done: list[RunRecord] = []
    while time.monotonic() < deadline:
        with psycopg.connect(dagster_url) as conn:
            done = [
                r
                for r in runs(conn, "incremental_cycle", since)
                if r.ended is not None and r.status in ("SUCCESS", "FAILURE")
            ]
        print(f"  {len(done)}/{n} incremental cycles finished", flush=True)
        if len(done) >= n:
            break
        time.sleep(30)
    return done


def loadavg() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def measure(scale: int, days: int, cycles: int, offset: int, keep: bool) -> dict[str, str]:
    home = (PROJECT_ROOT / ".local" / f"bench-scale-{scale}").resolve()
    # warnings e-mailed too: the kept S10 stack is where `make bench` times alert delivery
    # (bench_alert_latency --reuse), which reads each scenario's e-mail and Slack message
    settings = dict.fromkeys(CADENCE_SETTINGS, "1") | {"OPSDASH_ROUTE_WARNING": "email,slack"}
    env = stack_env(home, settings)
    if (home / ".env").exists():
        subprocess.run([str(BIN / "opsdash"), "down"], env=env, cwd=PROJECT_ROOT, check=False)
    shutil.rmtree(home, ignore_errors=True)
    # as root the cluster lives outside the home: a stale one would turn the cold build warm
    shutil.rmtree(root_cluster_dir(home), ignore_errors=True)
    home.mkdir(parents=True)
    log = home / "bench-scale.log"
    col: dict[str, str] = {"load at start": loadavg()}
    print(f"\n## scale {scale:,} customers x {days} days (home {home}, log {log})", flush=True)
    sampler = PeakRss(home)
    try:
        with sampler:
            opsdash(["up", "--infra-only", "--port-offset", str(offset)], env, log)
            # in the stack's .env too: a bench that reuses the kept stack reads them there
            with (home / ".env").open("a") as env_lines:
                env_lines.write("".join(f"{k}={v}\n" for k, v in settings.items()))
            pm = postmaster_pid(env)
            if pm:
                sampler.add_root(pm)
            conf = env_file(home)
            env |= {k: conf[k] for k in ("SOURCE_URL", "WAREHOUSE_URL") if k in conf}

            wall = opsdash(
                ["sim", "generate", "--scale", str(scale), "--days", str(days)], env, log
            )
            generated = count_rows(conf["SOURCE_URL"], list(SOURCE_TABLES))
            col["generation"] = f"{generated / wall:,.0f} rows/s ({generated:,} rows, {wall:.0f} s)"
            print(f"  generation: {col['generation']}", flush=True)

            up_started = time.time()
            wall = opsdash(
                ["up", "--port-offset", str(offset), "--scale", str(scale), "--days", str(days)],
                env,
                log,
            )
            col["opsdash up after generation (wall)"] = f"{wall:.0f} s"
            build = cold_build(conf["DAGSTER_PG_URL"])
            loaded = count_rows(conf["WAREHOUSE_URL"], raw_tables(conf["WAREHOUSE_URL"]))
            if build and build.ended and build.started:
                stages = build.by_stage()
                total = build.ended - build.started
                col["cold build total (target < 300 s)"] = f"{total:.0f} s ({verdict(total)})"
                for stage in STAGES:
                    col[f"  {stage} (step sums, overlap)"] = f"{stages.get(stage, 0.0):.0f} s"
                col["  critical path (why: what a faster step would shorten)"] = " -> ".join(
                    f"{short(s.step)} {s.seconds:.0f} s" for s in build.critical_path()
                )
                ingest = [s for s in build.steps if s.stage == "ingest"]
                if ingest:
                    span = max(s.ended for s in ingest) - min(s.started for s in ingest)
                    col["initial ingestion (target >= 300k rows/s at S10)"] = (
                        f"{loaded / span:,.0f} rows/s ({loaded:,} rows, {span:.0f} s)"
                    )
            print(f"  cold build: {col.get('cold build total (target < 300 s)', '?')}", flush=True)
            col |= churn_quality(home)

            done = wait_cycles(conf["DAGSTER_PG_URL"], up_started, cycles, 90 * cycles + 600)
            col["load during cycles"] = loadavg()
            if done:
                totals = [r.total_s for r in done if r.total_s is not None]
                col["incremental cycle p50 / p95 (target p95 < 20 s; noisy)"] = (
                    f"{p50_p95(totals)} ({verdict(pct(totals, 95), CYCLE_TARGET_P95_S)})"
                )
                col["  launch (tick or lane free -> process; noisiest)"] = p50_p95(
                    [r.launch_s for r in done if r.launch_s is not None]
                )
                col["  queued behind the previous cycle (not counted)"] = p50_p95(
                    [r.queued_s for r in done]
                )
                col["  set-up (process -> first step: start-up, code import)"] = p50_p95(
                    [r.setup_s for r in done if r.setup_s is not None]
                )
                for stage in ("ingest", "checks", "dbt"):
                    col[f"  {stage} "] = p50_p95([r.by_stage().get(stage, 0.0) for r in done])
                col["  scoring"] = "- (daily job, not in the cycle)"
                with psycopg.connect(conf["DAGSTER_PG_URL"]) as conn:
                    new_rows = [rows_read(conn, r.run_id) for r in done]
                col["  new source rows per cycle (median)"] = f"{statistics.median(new_rows):,.0f}"
                col["  cycles measured (failed)"] = (
                    f"{len(done)} ({sum(r.status == 'FAILURE' for r in done)})"
                )
            imports = [cold_import_seconds()[0] for _ in range(3)]
            col["code location import (median of 3)"] = f"{statistics.median(imports):.1f} s"
    finally:
        if not keep:
            subprocess.run(
                [str(BIN / "opsdash"), "down"],
                env=env,
                cwd=PROJECT_ROOT,
                check=False,
                stdout=subprocess.DEVNULL,
            )
            shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(root_cluster_dir(home), ignore_errors=True)
    for kind, (kb, _cmd) in sorted(sampler.peaks.items(), key=lambda kv: -kv[1][0]):
        flag = "" if kb < RSS_LIMIT_KB else " (over 8 GiB)"
        col[f"peak RSS: {kind}"] = f"{kb / 1024:,.0f} MiB{flag}"
    return col


def churn_quality(home: Path) -> dict[str, str]:
    """The cold build's churn scores against the simulator's ground truth (issue 10): the
    figures of `bench_churn --quality-only`, which prints its deciles as well."""
    from bench.bench_churn import quality_only

    try:
        rows = {name: (value, note) for name, value, note in quality_only(home)}
    except (SystemExit, psycopg.Error) as error:  # no scores: the build failed before them
        return {"churn scores vs ground truth": f"- ({error})"}
    recall = rows.get("recall at threshold", (float("nan"), ""))[0]
    brier, base = rows["Brier"]
    return {
        "churn scores vs ground truth: ROC-AUC / PR-AUC / recall at threshold / Brier": (
            f"{rows['ROC-AUC'][0]:.3f} / {rows['PR-AUC'][0]:.3f} / {recall:.3f} / {brier:.3f}"
            f" ({base.replace('base rate', 'base-rate predictor')})"
        )
    }


def print_table(columns: dict[int, dict[str, str]]) -> None:
    rows: list[str] = []
    for col in columns.values():
        rows += [k for k in col if k not in rows]
    scales = list(columns)
    width = max(len(r) for r in rows)
    header = " | ".join(f"{s:,} customers" for s in scales)
    print(f"\n{'':<{width}} | {header}")
    for r in rows:
        cells = " | ".join(columns[s].get(r, "-") for s in scales)
        print(f"{r:<{width}} | {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, action="append", help="repeatable")
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--cycles", type=int, default=4, help="incremental cycles to time")
    parser.add_argument("--port-offset", type=int, default=150)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the last scale's stack running (the stacks share their ports); it prints "
        "its home, for `bench_churn --reuse` or a look in the UIs",
    )
    args = parser.parse_args()
    started = time.monotonic()
    scales = args.scale or [100_000, 1_000_000]
    columns = {
        scale: measure(scale, args.days, args.cycles, args.port_offset, args.keep and i == last)
        for last in [len(scales) - 1]
        for i, scale in enumerate(scales)
    }
    print_table(columns)
    print(
        f"\n(bench_scale ran {(time.monotonic() - started) / 60:.1f} min. Noise: every figure is "
        "wall-clock on 2 cores shared with whatever else runs (see the load rows). Generation, "
        "ingestion, dbt and training move 10-25% between runs of the same code; the cycle's launch "
        "and total move most (a p95 of few cycles is one slow cycle); import and peak RSS are "
        "steady. Stage sums overlap (steps run side by side); the critical path does not.)"
    )


if __name__ == "__main__":
    main()

"""The live incremental cycle, end to end, as Dagster records it (issue 14 point 2).

A fresh `opsdash up` on its own home and ports (`--port-offset`, like bench_alert_latency) runs
every service, `sim live` included, with the cycle every `--cadence` minutes
(`OPSDASH_CYCLE_MINUTES`). Once `--cycles` scheduled `incremental_cycle` runs have ended, the
bench reads Dagster's own records from the instance's run storage (PostgreSQL database
`dagster`): each run's scheduled tick (tag `.dagster/scheduled_execution_time`), its RUN_START and
end, and the step events of its event log. It prints p50/p95 of

- launch: the schedule's tick to RUN_START (daemon tick, queue, run process start),
- run: RUN_START to the run's end (the marts committed),
- end to end: tick to the run's end,
- and the run broken down: ingest steps, check steps, the dbt step, and other (everything in
  the run outside those steps: importing the code location, resources, step plumbing).

    python -m bench.bench_cycle                    # fresh stack, 8 cycles at 1 minute
    python -m bench.bench_cycle --reuse --since 2026-12-01T04:00:00   # a running stack
    python -m bench.bench_cycle --scale 100000 --days 180 --live-days 30

`--live-days N` gives the fresh stack a source whose last N days were written by live mode
(issue 14: "after 30 days of simulated live history"): `opsdash sim generate --end` stops the
generated history N days ago, `opsdash sim replay` writes those N days tick by tick (an hour
each) as `sim live` would have, and only then does `opsdash up` build. Run it beside a plain
run at the same scale and days: the two stacks hold histories of the same length, one with a
month of live mode's arrivals, updates and late changes in it. The pipeline's own history of
that month (Dagster's run records, alert events, daily score history) is not replayed: the
pipeline runs on wall-clock time.

Figures are noisy on a shared 2-core machine; the machine load is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench.bench_scale import opsdash
from bench.common import BIN
from bench.stack import CADENCE_SETTINGS, env_file, stack_env, start_stack
from opsdash_core.settings import PROJECT_ROOT

JOB = "incremental_cycle"
# the tick a scheduled run came from: a hidden tag (leading dot) in the Dagster pinned here,
# a plain one in older releases
SCHEDULED_TAGS = (".dagster/scheduled_execution_time", "dagster/scheduled_execution_time")
DONE = ("SUCCESS", "FAILURE", "CANCELED")
PARTS = ("ingest", "checks", "dbt", "other")


@dataclass
class Cycle:
    run_id: str
    status: str
    tick: float | None
    start: float
    end: float
    steps: dict[str, float] = field(default_factory=dict)  # part -> seconds

    @property
    def launch(self) -> float | None:
        return None if self.tick is None else self.start - self.tick

    @property
    def run(self) -> float:
        return self.end - self.start

    @property
    def end_to_end(self) -> float | None:
        return None if self.tick is None else self.end - self.tick


def step_parts() -> dict[str, str]:
    """Step key -> part of the breakdown, from the code location's own definitions."""
    from orchestration.defs.ingestion.assets import INGESTION_ASSETS
    from orchestration.defs.quality.checks import QUALITY_CHECKS
    from orchestration.defs.transform.assets import opsdash_dbt_models

    parts = {a.op.name: "ingest" for a in INGESTION_ASSETS}
    parts |= {c.op.name: "checks" for c in QUALITY_CHECKS}
    parts[opsdash_dbt_models.op.name] = "dbt"
    return parts


def _epoch(ts: datetime) -> float:
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()


def cycles(dagster_url: str, since: float) -> list[Cycle]:
    """The ended scheduled runs of the cycle whose tick is at or after `since` (epoch s)."""
    found: list[Cycle] = []
    parts = step_parts()
    with psycopg.connect(dagster_url) as conn:
        runs = conn.execute(
            "select r.run_id, r.status, r.start_time, r.end_time, t.value from runs r"
            " join run_tags t on t.run_id = r.run_id"
            " and t.key = any(%s)"
            " where r.pipeline_name = %s and r.status = any(%s) and r.start_time is not null"
            " and r.end_time is not null order by r.start_time",
            (list(SCHEDULED_TAGS), JOB, list(DONE)),
        ).fetchall()
        for run_id, status, start, end, tick_text in runs:
            tick = datetime.fromisoformat(tick_text).timestamp() if tick_text else None
            if tick is None or tick < since:
                continue
            cycle = Cycle(run_id, status, tick, float(start), float(end))
            events = conn.execute(
                "select step_key, dagster_event_type, timestamp from event_logs"
                " where run_id = %s and step_key is not null and dagster_event_type = any(%s)"
                " order by id",
                (run_id, ["STEP_START", "STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"]),
            ).fetchall()
            started: dict[str, float] = {}
            for step, kind, ts in events:
                if kind == "STEP_START":
                    started[step] = _epoch(ts)
                elif step in started:
                    part = parts.get(step, "other")
                    cycle.steps[part] = cycle.steps.get(part, 0.0) + _epoch(ts) - started[step]
            in_steps = sum(v for k, v in cycle.steps.items() if k != "other")
            cycle.steps["other"] = max(0.0, cycle.run - in_steps)
            found.append(cycle)
    return found


def pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def row(name: str, values: list[float]) -> str:
    if not values:
        return f"| {name} | - | - | - |"
    return f"| {name} | {pct(values, 50):.1f} | {pct(values, 95):.1f} | {max(values):.1f} |"


def report(found: list[Cycle], cadence: str, scale: str) -> None:
    load = os.getloadavg()
    ok = [c for c in found if c.status == "SUCCESS"]
    print(
        f"{len(found)} scheduled {JOB} runs ({len(ok)} succeeded), cadence {cadence} min, "
        f"{scale}; machine load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (1/5/15 min), "
        f"{os.cpu_count()} CPUs"
    )
    print("| seconds | p50 | p95 | max |")
    print("|---|---|---|---|")
    print(row("launch (tick -> RUN_START)", [c.launch for c in found if c.launch is not None]))
    print(row("run (RUN_START -> end)", [c.run for c in found]))
    print(row("end to end (tick -> end)", [c.end_to_end for c in found if c.end_to_end]))
    for part in PARTS:
        print(row(f"  {part}", [c.steps.get(part, 0.0) for c in found]))
    print(
        json.dumps(
            [
                {
                    "run": c.run_id[:8],
                    "status": c.status,
                    "launch": round(c.launch or 0, 1),
                    "run_s": round(c.run, 1),
                    **{p: round(c.steps.get(p, 0.0), 1) for p in PARTS},
                }
                for c in found
            ]
        )
    )


def live_history(env: dict[str, str], home: Path, args: argparse.Namespace) -> None:
    """Infrastructure, a history ending `--live-days` ago, then those days replayed as live
    mode writes them; the `opsdash up` that follows finds the source filled and builds it."""
    if not 0 < args.live_days < args.days:
        raise SystemExit(f"--live-days must be between 1 and --days - 1 ({args.days - 1})")
    log = home / "bench-up.log"
    end = int(time.time()) // 60 * 60 - args.live_days * 86400

    opsdash(["up", "--infra-only", "--port-offset", str(args.port_offset)], env, log)
    env |= {"SOURCE_URL": env_file(home)["SOURCE_URL"]}
    generated = args.days - args.live_days
    wall = opsdash(
        [
            "sim",
            "generate",
            "--scale",
            str(args.scale),
            "--days",
            str(generated),
            "--end",
            str(end),
        ],
        env,
        log,
    )
    print(
        f"generated {generated} days of history ending {args.live_days} days ago in {wall:.0f} s",
        flush=True,
    )
    wall = opsdash(["sim", "replay", "--from", str(end)], env, log)
    replayed = [line for line in log.read_text().splitlines() if line.startswith("replayed:")]
    print(
        f"replayed {args.live_days} days of live mode in {wall:.0f} s: "
        f"{replayed[-1] if replayed else '?'}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=2000, help="customers of the fresh stack")
    parser.add_argument("--days", type=int, default=30, help="days of history")
    parser.add_argument("--cadence", type=int, default=1, help="OPSDASH_CYCLE_MINUTES")
    parser.add_argument("--cycles", type=int, default=8, help="cycles to measure")
    parser.add_argument("--warmup", type=int, default=1, help="first cycles not measured")
    parser.add_argument("--timeout", type=float, default=1800.0, help="max seconds of cycles")
    parser.add_argument("--home", type=Path, default=PROJECT_ROOT / ".local" / "bench-cycle")
    parser.add_argument("--port-offset", type=int, default=210)
    parser.add_argument(
        "--live-days",
        type=int,
        default=0,
        help="of --days, how many (the newest) `sim replay` writes as live mode would",
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument(
        "--reuse", action="store_true", help="measure the stack running at --home; implies --keep"
    )
    parser.add_argument(
        "--since", help="with --reuse: count the cycles ticked at or after this UTC time (ISO)"
    )
    args = parser.parse_args()
    home: Path = args.home.resolve()
    env = stack_env(home, {name: str(args.cadence) for name in CADENCE_SETTINGS})
    if args.reuse:
        args.keep = True
    else:
        if (home / ".env").exists():
            subprocess.run([str(BIN / "opsdash"), "down"], env=env, cwd=PROJECT_ROOT, check=False)
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
    started = time.time()
    try:
        if not args.reuse:
            if args.live_days:
                live_history(env, home, args)
            start_stack(env, home, args.port_offset, args.scale, args.days, "bench_cycle")
            print(
                f"fresh opsdash up ({args.scale:,} customers, {args.days} days) in "
                f"{time.time() - started:.0f} s; sim live runs as a service",
                flush=True,
            )
        conf = env_file(home)
        since = (
            datetime.fromisoformat(args.since).replace(tzinfo=UTC).timestamp()
            if args.since
            else time.time()
        )
        wanted = args.cycles + (0 if args.since else args.warmup)
        deadline = time.monotonic() + args.timeout
        found: list[Cycle] = []
        while time.monotonic() < deadline:
            found = cycles(conf["DAGSTER_PG_URL"], since)
            if len(found) >= wanted:
                break
            time.sleep(20)
        measured = found[len(found) - min(len(found), args.cycles) :]
        cadence = conf.get("OPSDASH_CYCLE_MINUTES", "5")
        what = f"{args.scale:,} customers, {args.days} days" + (
            f", the newest {args.live_days} written by live mode" if args.live_days else ""
        )
        report(measured, cadence, what if not args.reuse else str(home))
    finally:
        if not args.keep:
            # --purge: as root the cluster lives under /var/lib/opsdash, outside the home
            subprocess.run(
                [str(BIN / "opsdash"), "down", "--purge"], env=env, cwd=PROJECT_ROOT, check=False
            )


if __name__ == "__main__":
    main()

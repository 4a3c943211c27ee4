"""dbt benchmark: full build vs one incremental build, and how well the risk score ranks churn.

    .venv/bin/python -m bench.bench_dbt --scale 100000 [--scale 1000000] [--days 180]

Per scale, in scratch databases: simulate the marketplace, ingest it, `dbt build` everything
(full build), simulate one 5-minute live window, ingest it, and `dbt build` again the way the
5-minute cycle does (`--exclude tag:heavy test_type:unit`: the full-history tests and the unit
tests run in the daily check).
Prints both times, their ratio and the SQL share of each (dbt's run_results), then the risk
tiers' churn rates against the simulator's ground truth and the rule score's ROC-AUC.

Ingestion and dbt run one after the other here, so the incremental build runs with
`ingest_margin: 0` (the margin re-reads rows of ingestion transactions that were still open
during the previous run; there are none).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from bench.common import migrate, opsdash, scratch_database
from opsdash_core.dbt_env import dbt_env
from opsdash_core.settings import PROJECT_ROOT, get_settings
from orchestration.lib.ingest.loader import Fetcher, ingest_table, source_fetcher
from orchestration.lib.ingest.tables import TABLES, TableSpec

DBT_PROJECT = PROJECT_ROOT / "dbt_project"
TIERS = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class BuildTiming:
    """One `dbt build`: wall time, time inside models/tests, and rows written by incrementals."""

    wall_s: float
    sql_s: float
    nodes: int
    slowest: list[tuple[str, float]]


@dataclass(frozen=True)
class ScaleResult:
    scale: int
    ingest_s: float
    full: BuildTiming
    window_ingest_s: float
    window_rows: int
    incremental: BuildTiming
    customers: int
    tiers: list[tuple[str, int, float]]
    auc: float


def calls_fetcher(source_url: str, spec: TableSpec, batch_size: int = 20_000) -> Fetcher:
    """support.inbound_calls read straight from the source database (same columns as the API)."""

    def fetch(since: Any) -> Iterator[list[dict[str, Any]]]:
        query = sql.SQL(
            "select {cols} from support.inbound_calls where updated_at > %s order by updated_at, id"
        ).format(cols=sql.SQL(", ").join(sql.Identifier(c) for c in spec.columns))
        with (
            psycopg.connect(source_url) as conn,
            conn.cursor(name="bench_calls", row_factory=dict_row) as cur,
        ):
            cur.execute(query, (since,))
            while rows := cur.fetchmany(batch_size):
                yield rows

    return fetch


def ingest(warehouse_url: str, source_url: str) -> tuple[float, int]:
    """One ingestion cycle over every table; returns seconds and rows upserted."""
    started = time.monotonic()
    rows = 0
    for spec in TABLES:
        fetch = source_fetcher(source_url, spec) if spec.source else calls_fetcher(source_url, spec)
        rows += ingest_table(warehouse_url, spec, fetch).rows_upserted
    return time.monotonic() - started, rows


def dbt_build(
    warehouse_url: str, args: list[str], vars_: dict[str, Any] | None = None
) -> BuildTiming:
    """`dbt build` against `warehouse_url` with private target/log paths; fails loudly."""
    settings = get_settings()
    env = {
        **os.environ,
        **dbt_env(settings),
        "OPSDASH_DBT_DBNAME": warehouse_url.rsplit("/", 1)[1],
        "HTTPS_PROXY": "http://127.0.0.1:9",  # dbt asks PyPI for its latest version otherwise
    }
    with tempfile.TemporaryDirectory(prefix="bench_dbt_") as tmp:
        command = [
            str(Path(sys.executable).parent / "dbt"),
            "build",
            "--profiles-dir",
            str(DBT_PROJECT),
            "--target-path",
            f"{tmp}/target",
            "--log-path",
            f"{tmp}/logs",
            *args,
        ]
        if vars_:
            command += ["--vars", json.dumps(vars_)]
        started = time.monotonic()
        done = subprocess.run(command, cwd=DBT_PROJECT, env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
        if done.returncode != 0:
            print(done.stdout[-4000:], file=sys.stderr)
            raise SystemExit(f"dbt build failed ({done.returncode})")
        results = json.loads(Path(f"{tmp}/target/run_results.json").read_text())["results"]
    times = sorted(
        ((r["unique_id"].split(".")[2], r["execution_time"]) for r in results),
        key=lambda item: -item[1],
    )
    return BuildTiming(wall, sum(t for _, t in times), len(times), times[:5])


def risk_validation(
    warehouse_url: str, source_url: str
) -> tuple[int, list[tuple[str, int, float]], float]:
    """Churn rate per tier and ROC-AUC of risk_score for the customers in customer_health."""
    from sklearn.metrics import roc_auc_score

    with psycopg.connect(warehouse_url) as conn:
        scores = dict(
            conn.execute(
                "select customer_id, risk_score::float8 || ':' || risk_tier from marts.customer_health"
            ).fetchall()
        )
    with psycopg.connect(source_url) as conn:
        truth = dict(
            conn.execute("select customer_id, churned from truth.customer_outcomes").fetchall()
        )
    labels, values, by_tier = [], [], {t: [0, 0] for t in TIERS}
    for customer_id, packed in scores.items():
        score, tier = packed.split(":")
        churned = bool(truth[customer_id])
        labels.append(churned)
        values.append(float(score))
        by_tier[tier][0] += 1
        by_tier[tier][1] += churned
    tiers = [(t, n, churned / n if n else float("nan")) for t, (n, churned) in by_tier.items()]
    return len(scores), tiers, float(roc_auc_score(labels, values))


def run_scale(scale: int, days: int) -> ScaleResult:
    with scratch_database("dbt_src") as source_url, scratch_database("dbt_wh") as warehouse_url:
        print(f"[bench_dbt] scale {scale:,}: simulating {days} days", flush=True)
        opsdash(
            ["sim", "generate", "--scale", str(scale), "--days", str(days)],
            {"SOURCE_URL": source_url},
        )
        migrate(warehouse_url)
        ingest_s, _ = ingest(warehouse_url, source_url)
        print(f"[bench_dbt] ingested in {ingest_s:.1f}s; full dbt build", flush=True)
        full = dbt_build(warehouse_url, [])
        print(f"[bench_dbt] full build {full.wall_s:.1f}s; one 5-minute live window", flush=True)
        opsdash(["sim", "live", "--once", "--interval", "300"], {"SOURCE_URL": source_url})
        window_s, window_rows = ingest(warehouse_url, source_url)
        incremental = dbt_build(
            warehouse_url,
            ["--exclude", "tag:heavy", "test_type:unit"],
            {"ingest_margin": "0 seconds"},
        )
        customers, tiers, auc = risk_validation(warehouse_url, source_url)
    return ScaleResult(
        scale, ingest_s, full, window_s, window_rows, incremental, customers, tiers, auc
    )


def report(r: ScaleResult) -> None:
    ratio = r.full.wall_s / r.incremental.wall_s if r.incremental.wall_s else float("inf")
    sql_ratio = r.full.sql_s / r.incremental.sql_s if r.incremental.sql_s else float("inf")
    print(f"\n== dbt at scale {r.scale:,} customers ==")
    print(f"ingest (initial load)          {r.ingest_s:8.1f} s")
    print(
        f"full build (dbt build)         {r.full.wall_s:8.1f} s   SQL {r.full.sql_s:6.1f} s  "
        f"({r.full.nodes} models/tests)"
    )
    print(f"5-minute window ingested       {r.window_ingest_s:8.1f} s   {r.window_rows:,} rows")
    print(
        f"incremental build              {r.incremental.wall_s:8.1f} s   SQL "
        f"{r.incremental.sql_s:6.1f} s  ({r.incremental.nodes} models/tests)"
    )
    print(f"full / incremental             {ratio:8.1f} x   SQL {sql_ratio:.1f} x")
    print("slowest in full build:        " + ", ".join(f"{n} {t:.1f}s" for n, t in r.full.slowest))
    print(
        "slowest in incremental build: "
        + ", ".join(f"{n} {t:.1f}s" for n, t in r.incremental.slowest)
    )
    print(f"\nrisk tiers vs ground truth ({r.customers:,} active customers)")
    print(f"  {'tier':<10}{'customers':>11}{'churn rate':>12}")
    for tier, n, rate in r.tiers:
        print(f"  {tier:<10}{n:>11,}{rate:>12.1%}")
    rates = [rate for _, n, rate in r.tiers if n]
    rising = all(a < b for a, b in itertools.pairwise(rates))
    print(f"  churn rate rises strictly low -> critical: {'yes' if rising else 'NO'}")
    print(f"  rule-score ROC-AUC for churn: {r.auc:.3f}  (target >= 0.70)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scale",
        action="append",
        type=int,
        help="customers; repeat for several scales (default 100000)",
    )
    parser.add_argument("--days", type=int, default=180)
    args = parser.parse_args()
    for scale in args.scale or [100_000]:
        report(run_scale(scale, args.days))


if __name__ == "__main__":
    main()

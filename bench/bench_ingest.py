"""Ingestion benchmark: initial load and one incremental cycle after a 5-minute live window.

.venv/bin/python -m bench.bench_ingest [--scale 100000] [--days 180]
"""

from __future__ import annotations

import argparse
import os
import time

import psycopg

from bench.common import migrate, opsdash, scratch_database, timed
from opsdash_core.settings import get_settings
from opsdash_stack.probes import http_ok
from opsdash_stack.services.simulator import support_api_process
from orchestration.lib.ingest.loader import IngestReport, ingest_table, source_fetcher
from orchestration.lib.ingest.support_client import SupportApiClient
from orchestration.lib.ingest.tables import TABLES


def cycle(warehouse_url: str, source_url: str, api_url: str) -> list[IngestReport]:
    """One ingestion cycle over every table, as the schedules would run it."""
    reports = []
    token = get_settings().support_api_token
    for spec in TABLES:
        if spec.source is None:
            client = SupportApiClient(api_url, token)
            try:
                reports.append(ingest_table(warehouse_url, spec, client.inbound_calls))
            finally:
                client.close()
        else:
            reports.append(ingest_table(warehouse_url, spec, source_fetcher(source_url, spec)))
    return reports


def free_port() -> int:
    port = 18100
    while http_ok(f"http://127.0.0.1:{port}/health", timeout=0.3):
        port += 1
    return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=180)
    args = parser.parse_args()
    with scratch_database("src") as source_url, scratch_database("wh") as warehouse_url:
        env = {"SOURCE_URL": source_url}
        gen = opsdash(
            ["sim", "generate", "--scale", str(args.scale), "--days", str(args.days)], env
        )
        migrate(warehouse_url)
        with support_api_process(source_url, free_port()) as api_url:
            started = time.monotonic()
            initial = cycle(warehouse_url, source_url, api_url)
            initial_s = time.monotonic() - started
            rows = sum(r.rows_upserted for r in initial)
            opsdash(["sim", "live", "--once", "--interval", "300"], env)
            median, _runs = timed(lambda: cycle(warehouse_url, source_url, api_url))
            # The same cycle again with nothing new: the fixed cost of a cycle.
            idle_median, _ = timed(lambda: cycle(warehouse_url, source_url, api_url), repeat=3)
        with psycopg.connect(warehouse_url) as conn:
            counted = conn.execute("select count(*) from raw.quarantine").fetchone()
            quarantined = counted[0] if counted else 0
    print(f"\n== ingestion benchmark (scale {args.scale:,} customers, {args.days} days) ==")
    print(f"simulator generate:               {gen:8.1f} s")
    print(
        f"initial load, all tables:         {initial_s:8.1f} s  ({rows:,} rows, "
        f"{rows / initial_s:,.0f} rows/s, {quarantined} quarantined)"
    )
    for r in initial:
        rate = r.rows_upserted / r.seconds if r.seconds else 0.0
        print(
            f"   {r.table:<22} {r.rows_upserted:>10,} rows  {r.seconds:6.1f} s  {rate:>9,.0f} rows/s"
        )
    print(f"incremental cycle after 5 min:    {median:8.2f} s")
    print(f"idle cycle (nothing new), median: {idle_median:8.2f} s")
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    noisy = "  (noisy: more runnable work than cores)" if load > cores else ""
    print(f"load average at the end:          {load:8.2f}  on {cores} cores{noisy}")


if __name__ == "__main__":
    main()

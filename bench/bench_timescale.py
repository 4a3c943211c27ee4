"""TimescaleDB benchmark: what compression does to each compressed time-series mart.

    .venv/bin/python -m bench.bench_timescale --scale 100000 [--days 180]

Needs a server with TimescaleDB installed and preloaded; otherwise it says so and stops (the
figures cannot be simulated). With it, in scratch databases: simulate the marketplace,
ingest it, `dbt build --vars '{timescaledb: true}'`, materialize the continuous aggregates'
history (the pipeline's refresh step), compress every chunk that ended before today, then
print per model the bytes before/after compression, the ratio, and how many chunks grew (the
layout is wrong if any did), plus each roll-up's row count against its query on the source.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from psycopg import sql

from bench.bench_dbt import dbt_build, ingest
from bench.common import migrate, opsdash, scratch_database
from opsdash_core.rollups import refresh_continuous_aggregates
from opsdash_core.settings import get_settings
from opsdash_core.timescale import timescale_available

COMPRESSED = (
    "intermediate.int_tutor_sessions_daily",
    "intermediate.int_demand_hourly",
    "intermediate.int_supply_hourly",
    "marts.supply_demand_hourly",
    "marts.tutor_performance_daily",
    "marts.customer_health_history",
)
ROLLUPS = {
    "marts.supply_demand_daily": "subject_id, time_bucket(interval '1 day', hour_at)",
    "marts.supply_demand_category_hourly": "subject_category, hour_at",
}

# Chunks that ended before today: what the compression policies would reach, at most.
COMPRESS_SQL = """
select count(compress_chunk(c, if_not_compressed => true))
from show_chunks(%(table)s::regclass, older_than => now() - interval '1 day') as c
"""
CHUNK_STATS_SQL = """
select count(*),
       coalesce(sum(before_compression_total_bytes), 0),
       coalesce(sum(after_compression_total_bytes), 0),
       count(*) filter (where after_compression_total_bytes >= before_compression_total_bytes)
from chunk_compression_stats(%(table)s::regclass)
where compression_status = 'Compressed'
"""
TOTAL_BYTES_SQL = "select hypertable_size(%(table)s::regclass)"


@dataclass(frozen=True)
class Compression:
    table: str
    chunks: int
    before_bytes: int
    after_bytes: int
    grown: int
    total_bytes: int


def compress(conn: psycopg.Connection, table: str) -> Compression:
    conn.execute(COMPRESS_SQL, {"table": table})
    row = conn.execute(CHUNK_STATS_SQL, {"table": table}).fetchone()
    total = conn.execute(TOTAL_BYTES_SQL, {"table": table}).fetchone()
    assert row is not None
    assert total is not None
    return Compression(table, int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(total[0]))


def rollup_rows(conn: psycopg.Connection, view: str, group_by: str) -> tuple[int, int]:
    """Rows in the continuous aggregate vs groups in its source (equal once history is there)."""
    got = conn.execute(
        sql.SQL("select count(*) from {}").format(sql.Identifier(*view.split(".")))
    ).fetchone()
    want = conn.execute(
        sql.SQL(
            "select count(*) from (select 1 from marts.supply_demand_hourly group by {}) as g"
        ).format(sql.SQL(group_by))
    ).fetchone()
    return int(got[0]) if got else 0, int(want[0]) if want else 0


def run(scale: int, days: int) -> None:
    with scratch_database("ts_src") as source_url, scratch_database("ts_wh") as warehouse_url:
        print(f"[bench_timescale] scale {scale:,}: simulating {days} days", flush=True)
        opsdash(
            ["sim", "generate", "--scale", str(scale), "--days", str(days)],
            {"SOURCE_URL": source_url},
        )
        print(f"[bench_timescale] {migrate(warehouse_url)}; ingesting", flush=True)
        ingest(warehouse_url, source_url)
        build = dbt_build(warehouse_url, [], {"timescaledb": True})
        print(f"[bench_timescale] dbt build {build.wall_s:.1f}s", flush=True)
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            refreshed = refresh_continuous_aggregates(conn, timedelta(days=3), timedelta(days=8))
            print(f"[bench_timescale] history materialized: {', '.join(refreshed)}", flush=True)
            results = [compress(conn, table) for table in COMPRESSED]
            rollups = {view: rollup_rows(conn, view, by) for view, by in ROLLUPS.items()}

    print(f"\n== TimescaleDB compression at scale {scale:,} customers, {days} days ==")
    print(
        f"  {'hypertable':<40}{'chunks':>7}{'before MB':>11}{'after MB':>10}{'ratio':>8}{'grew':>6}"
    )
    for r in results:
        ratio = r.before_bytes / r.after_bytes if r.after_bytes else float("nan")
        print(
            f"  {r.table:<40}{r.chunks:>7}{r.before_bytes / 1e6:>11.1f}"
            f"{r.after_bytes / 1e6:>10.1f}{ratio:>7.1f}x{r.grown:>6}"
        )
    grown = sum(r.grown for r in results)
    print(f"  compressed chunks that grew: {grown} ({'OK' if grown == 0 else 'layout is wrong'})")
    for view, (got, want) in rollups.items():
        print(
            f"  {view}: {got:,} rows, source groups {want:,} ({'OK' if got == want else 'MISSING'})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, default=100_000, help="customers (default S1)")
    parser.add_argument("--days", type=int, default=180)
    args = parser.parse_args()
    with psycopg.connect(get_settings().warehouse_url) as conn:
        usable = timescale_available(conn)
    if not usable:
        print(
            "[bench_timescale] SKIPPED: TimescaleDB is not installed and preloaded on this "
            "PostgreSQL (pg_available_extensions / shared_preload_libraries), so there is no "
            "compression to measure. Install it (README, TimescaleDB) and rerun `make bench-parts`."
        )
        return
    run(args.scale, args.days)


if __name__ == "__main__":
    main()

"""Data-quality benchmark: every check of one incremental cycle, at scale.

    .venv/bin/python -m bench.bench_checks [--scale 1000000] [--days 180]

Builds raw.* of `--scale` customers straight in SQL (S1 = 100,000
customers and 3,000 sessions a day; S10 = 10x), checks everything once (the cold full pass
that sets each check's window), then lands one 5-minute cycle of new and updated rows and
runs that cycle's checks in a fresh process, as a Dagster run would (GX import included).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import psycopg

from bench.common import migrate, scratch_database
from opsdash_core.settings import PROJECT_ROOT

SESSIONS_PER_DAY_S1 = 3_000
CUSTOMERS_S1 = 100_000

# Raw tables a 5-minute cycle loads (sessions and requests every 5 min, calls every 15): their
# checks are what the cycle pays for. The marts rebuilt after them are checked by their dbt
# tests inside the dbt build (bench_dbt.py), not by Great Expectations.
CYCLE_ASSETS = (
    ("raw", "sessions"),
    ("raw", "session_requests"),
    ("raw", "inbound_calls"),
)

HISTORY_SQL = """
insert into raw.subjects (id, name, category, created_at, updated_at)
select g, 'subject ' || g, 'cat ' || g %% 6, now() - interval '400 days', now() - interval '400 days'
from generate_series(1, 40) g;

insert into raw.tutors (id, status, hourly_rate_cents, created_at, updated_at)
select g, 'active', 3500, now() - interval '400 days', now() - interval '400 days'
from generate_series(1, %(tutors)s) g;

insert into raw.customers (id, status, grade_level, goal_progress_pct, acquisition_channel,
                           created_at, updated_at)
select g, 'active', g %% 12 + 1, g %% 100, 'referral',
       now() - interval '200 days', now() - (g %% 3000) * interval '1 minute'
from generate_series(1, %(customers)s) g;

insert into raw.tutor_subjects (id, tutor_id, subject_id, created_at, updated_at)
select g, (g - 1) / 3 + 1, g %% 40 + 1, now() - interval '400 days', now() - interval '400 days'
from generate_series(1, %(tutors)s * 3) g;

insert into raw.tutor_availabilities (id, tutor_id, day_of_week, start_hour, end_hour,
                                      created_at, updated_at)
select g, (g - 1) / 4 + 1, g %% 7, 15, 19, now() - interval '400 days', now() - interval '400 days'
from generate_series(1, %(tutors)s * 4) g;

insert into raw.sessions (id, customer_id, tutor_id, subject_id, scheduled_at, duration_minutes,
                          status, cancelled_by, rating, is_first_session, created_at, updated_at)
select g, g %% %(customers)s + 1, g %% %(tutors)s + 1, g %% 40 + 1,
       c - interval '1 hour', 60,
       case when g %% 10 = 0 then 'cancelled' else 'completed' end,
       case when g %% 10 = 0 then 'customer' end,
       case when g %% 10 <> 0 then 3 + g %% 3 end,
       false, c, c
from (
    select g, now() - interval '10 minutes' - (g::float8 * %(span_s)s / %(n)s) * interval '1 second' as c
    from generate_series(1, %(n)s) g
) s;

insert into raw.session_requests (id, customer_id, subject_id, requested_start_at, status,
                                  created_at, updated_at)
select id, customer_id, subject_id, scheduled_at,
       case when id %% 20 = 0 then 'unfilled' when id %% 50 = 1 then 'pending' else 'matched' end,
       created_at, updated_at
from raw.sessions;

insert into raw.inbound_calls (id, customer_id, reason_code, channel, duration_seconds,
                               resolved, called_at, created_at, updated_at)
select g, g %% %(customers)s + 1,
       (array['billing','scheduling','tutor_quality','technical','other'])[g %% 5 + 1],
       'phone', 300, true, c, c, c
from (
    select g, now() - interval '10 minutes' - (g::float8 * %(span_s)s / %(calls)s) * interval '1 second' as c
    from generate_series(1, %(calls)s) g
) s;

insert into raw.watermarks (table_name, watermark)
select t, now() - interval '5 minutes'
from unnest(array['customers', 'tutors', 'subjects', 'sessions', 'session_requests',
                  'inbound_calls', 'tutor_subjects', 'tutor_availabilities']) t;
"""

# One 5-minute cycle at the scale: new sessions and requests, sessions that completed or were
# rated (updated), new calls and a few quarantined rows.
CYCLE_SQL = """
insert into raw.sessions (id, customer_id, tutor_id, subject_id, scheduled_at, duration_minutes,
                          status, rating, is_first_session, created_at, updated_at)
select %(n)s + g, g %% %(customers)s + 1, g %% %(tutors)s + 1, 1, now() + interval '1 day', 60,
       'scheduled', null, false, now() - interval '1 minute', now() - interval '1 minute'
from generate_series(1, %(new)s) g;

update raw.sessions set updated_at = now() - interval '1 minute', _ingested_at = now()
where id in (select id from raw.sessions where id between 1 and %(n)s order by id limit %(updated)s);

insert into raw.session_requests (id, customer_id, subject_id, requested_start_at, status,
                                  created_at, updated_at)
select %(n)s + g, g %% %(customers)s + 1, 1, now() + interval '1 day', 'pending',
       now() - interval '1 minute', now() - interval '1 minute'
from generate_series(1, %(new)s) g;

insert into raw.inbound_calls (id, customer_id, reason_code, channel, duration_seconds,
                               resolved, called_at, created_at, updated_at)
select %(calls)s + g, g %% %(customers)s + 1, 'billing', 'chat', 120, false,
       now() - interval '2 minutes', now() - interval '1 minute', now() - interval '1 minute'
from generate_series(1, %(new_calls)s) g;

insert into raw.quarantine (table_name, source_key, reason, payload, payload_hash, run_id)
select 'sessions', g::text, 'rating: Input should be less than or equal to 5',
       '{"rating": 7}', md5(g::text), 'bench-cycle'
from generate_series(1, 2) g;
"""


def execute_all(conn: psycopg.Connection, script: str, params: dict[str, int]) -> None:
    """Statements one by one: the extended protocol takes one statement per parameterized call."""
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement, params)


def build(url: str, scale: int, days: int) -> dict[str, int]:
    per_day = SESSIONS_PER_DAY_S1 * scale // CUSTOMERS_S1
    sizes = {
        "customers": scale,
        "tutors": max(scale // 30, 10),
        "n": per_day * days,
        "calls": per_day * days // 6,
        "span_s": days * 86_400,
        "new": max(per_day // 288, 1),
        "updated": max(2 * per_day // 288, 1),
        "new_calls": max(per_day // 6 // 96, 1),
        "per_day": per_day,
        "days": days,
    }
    with psycopg.connect(url, autocommit=True) as conn:
        execute_all(conn, HISTORY_SQL, sizes)
        conn.execute("vacuum analyze")
    return sizes


def cycle_suites() -> list[str]:
    from data_checks import SUITES

    return [s.name for s in SUITES if s.asset in CYCLE_ASSETS]


def run_suites(url: str, home: Path, names: list[str], facts_run: str | None) -> list[dict]:
    """Every named suite once, recorded like a Dagster check (history, Data Docs)."""
    from data_checks import BY_NAME, LoadFacts, run_check

    out = []
    for name in names:
        suite = BY_NAME[name]
        facts = (
            LoadFacts(facts_run, 300) if facts_run and suite.check == "quarantine_rate" else None
        )
        started = time.monotonic()
        result = run_check(url, suite, run_id=facts_run or "bench", facts=facts, home=home).result
        out.append(
            {
                "suite": name,
                "seconds": round(time.monotonic() - started, 3),
                "rows": result.window.rows,
                "success": result.success,
                "failed": [o.label for o in result.failures],
            }
        )
    return out


def child(url: str, home: str) -> None:
    """The cycle's checks in this fresh process: what one Dagster run pays, imports included."""
    started = time.monotonic()
    from data_checks.gx_api import load_gx_api

    load_gx_api()
    gx_import = time.monotonic() - started
    results = run_suites(url, Path(home), cycle_suites(), "bench-cycle")
    total = time.monotonic() - started
    print(json.dumps({"gx_import": gx_import, "total": total, "results": results}))


def table(results: list[dict]) -> str:
    lines = [f"  {'suite':<42} {'rows':>10} {'seconds':>8}  result"]
    for r in results:
        verdict = "ok" if r["success"] else "FAILED: " + "; ".join(r["failed"])[:80]
        rows = "-" if r["rows"] is None else f"{r['rows']:,}"
        lines.append(f"  {r['suite']:<42} {rows:>10} {r['seconds']:>8.2f}  {verdict}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=CUSTOMERS_S1)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--child", nargs=2, metavar=("URL", "HOME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    label = f"S{args.scale / CUSTOMERS_S1:g}"
    with scratch_database("dq") as url, TemporaryDirectory() as home:
        migrate(url)
        started = time.monotonic()
        sizes = build(url, args.scale, args.days)
        print(
            f"{label}: built raw.* in {time.monotonic() - started:.0f} s "
            f"({sizes['customers']:,} customers, {sizes['n']:,} sessions, "
            f"{sizes['calls']:,} calls)"
        )
        from data_checks import SUITES

        started = time.monotonic()
        cold = run_suites(url, Path(home), [s.name for s in SUITES], None)
        print(f"cold pass, every suite over every row: {time.monotonic() - started:.1f} s")
        print(table(cold))

        with psycopg.connect(url) as conn:
            execute_all(conn, CYCLE_SQL, sizes)
        proc = subprocess.run(
            [sys.executable, "-m", "bench.bench_checks", "--child", url, home],
            capture_output=True,
            text=True,
            check=True,
            cwd=PROJECT_ROOT,
        )
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"incremental cycle ({sizes['new']} new + {sizes['updated']} updated sessions, "
            f"{sizes['new']} requests, {sizes['new_calls']} calls): "
            f"{out['total']:.1f} s in a fresh process, of which GX import {out['gx_import']:.1f} s"
        )
        print(table(out["results"]))
        print(f"budget: 20 s -> {'PASS' if out['total'] < 20 else 'FAIL'}")


if __name__ == "__main__":
    main()

"""Data-quality benchmark: every check of one incremental cycle, at scale.

    .venv/bin/python -m bench.bench_checks [--scale 1000000] [--days 180]

Builds raw.* and the marts of `--scale` customers straight in SQL (S1 = 100,000
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

# Assets a 5-minute cycle materializes (sessions and requests every 5 min, calls every 15,
# marts rebuilt after them): their checks are what the cycle pays for.
CYCLE_ASSETS = (
    ("raw", "sessions"),
    ("raw", "session_requests"),
    ("raw", "inbound_calls"),
    ("marts", "customer_health"),
    ("marts", "customer_health_history"),
    ("marts", "tutor_performance_daily"),
    ("marts", "tutor_performance"),
    ("marts", "supply_demand_hourly"),
    ("marts", "ops_kpis_daily"),
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

create schema if not exists marts;
create table marts.customer_health as
select id as customer_id, (id %% 100)::numeric as risk_score, (id %% 100)::numeric as base_risk_score,
       (array['low','medium','high','critical'])[id %% 4 + 1] as risk_tier,
       (array['low','medium','high','critical'])[(id + 1) %% 4 + 1] as risk_tier_7d_ago,
       'established' as scoring_profile,
       0.5::numeric as recency_risk, 0.5::numeric as frequency_risk, 0.5::numeric as rating_risk,
       0.5::numeric as support_calls_risk, 0.5::numeric as goal_progress_risk,
       0.5::numeric as tutor_switching_risk, 0.5::numeric as tenure_risk,
       (id %% 30)::numeric as days_since_last_session, (id %% 8)::bigint as sessions_30d,
       4.2::numeric as avg_rating_30d, (id %% 3)::bigint as inbound_calls_30d,
       goal_progress_pct, null::double precision as churn_probability,
       now() - interval '15 minutes' as computed_at
from raw.customers;
create unique index on marts.customer_health (customer_id);
create index on marts.customer_health (computed_at);

create table marts.customer_health_history as
select customer_id, (now() - d * interval '1 day')::date as snapshot_date, risk_score, risk_tier,
       churn_probability, computed_at - d * interval '1 day' as computed_at
from marts.customer_health, generate_series(1, 2) d;
create index on marts.customer_health_history (customer_id, snapshot_date);
create index on marts.customer_health_history (computed_at);

create table marts.tutor_performance as
select id as tutor_id, 12 as weekly_available_hours, 40 as sessions_scheduled_30d,
       36 as sessions_completed_30d, 4.3::numeric as avg_rating_30d,
       0.02::numeric as tutor_no_show_rate_30d, 0.03::numeric as tutor_cancellation_rate_30d,
       0.7::numeric as first_session_success_rate_30d, 0.8::numeric as rebooking_rate_30d,
       0.6::numeric as utilization_30d, 81.5::numeric as success_score,
       now() - interval '15 minutes' as computed_at
from raw.tutors;

create table marts.tutor_performance_daily as
select p.tutor_id, (now() - d * interval '1 day')::date as performance_date,
       2 as sessions_scheduled, 2 as sessions_completed, 0 as tutor_no_shows,
       0 as tutor_cancellations, 0 as customer_no_shows, 0 as customer_cancellations,
       1 as ratings, 4.0::numeric as avg_rating, 0.5::numeric as utilization,
       p.weekly_available_hours, p.sessions_scheduled_30d, p.sessions_completed_30d,
       p.avg_rating_30d, p.tutor_no_show_rate_30d, p.tutor_cancellation_rate_30d,
       p.first_session_success_rate_30d, p.rebooking_rate_30d, p.utilization_30d,
       p.success_score, p.computed_at - d * interval '1 day' as computed_at
from marts.tutor_performance p, generate_series(1, 30) d;
create index on marts.tutor_performance_daily (tutor_id, performance_date);
create index on marts.tutor_performance_daily (computed_at);

create table marts.supply_demand_hourly as
select s as subject_id, date_trunc('hour', now()) - h * interval '1 hour' as hour_at,
       10 as requested_sessions, 8 as filled_sessions, 2 as unfilled_requests,
       0 as pending_requests, 0.8::numeric as fill_rate, 12 as available_tutor_hours,
       8 as booked_tutor_hours, 4 as open_tutor_hours,
       now() - interval '15 minutes' - greatest(h, 0) * interval '1 hour' as computed_at
from generate_series(1, 40) s, generate_series(-168, %(days)s * 24) h;
create index on marts.supply_demand_hourly (subject_id, hour_at);
create index on marts.supply_demand_hourly (computed_at);

create table marts.ops_kpis_daily as
select (now() - d * interval '1 day')::date as kpi_date, %(customers)s as active_customers,
       %(per_day)s as sessions_completed, 92.5::numeric as completion_rate,
       4.3::numeric as avg_rating, %(customers)s / 10 as at_risk_customers,
       %(customers)s / 50 as critical_customers, now() - interval '15 minutes' as computed_at
from generate_series(0, %(days)s) d;
"""

# One 5-minute cycle at the scale: new sessions and requests, sessions that completed or were
# rated (updated), new calls, a few quarantined rows, and the customers the mart rescored.
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

update marts.customer_health set computed_at = now()
where customer_id in (select customer_id from raw.sessions where _ingested_at = now());

insert into marts.customer_health_history
select customer_id, current_date, risk_score, risk_tier, churn_probability, now()
from marts.customer_health where computed_at = now();

update marts.tutor_performance set computed_at = now();

update marts.tutor_performance_daily set computed_at = now()
where performance_date = current_date - 1
  and tutor_id in (select tutor_id from raw.sessions where _ingested_at = now());

update marts.supply_demand_hourly set computed_at = now()
where hour_at >= date_trunc('hour', now()) and hour_at < now() + interval '1 day';

update marts.ops_kpis_daily set computed_at = now();
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
    from data_checks.kit import load_kit

    load_kit()
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

"""App load benchmark: each page's server-side rerun time with 50 logged-in sessions refreshing
every 30 s, with the query cache's data from PostgreSQL (Redis unavailable) and from Redis
(warm), plus each data query's latency from either store.

    .venv/bin/python -m bench.bench_app [--scale 100000] [--scale 1000000] [--sessions 50]
        [--period 30] [--rounds 4] [--stuck-s 10] [--days 180]
    OPSDASH_ENV_FILE=.local/bench-scale-1000000/.env .venv/bin/python -m bench.bench_app \
        --reuse --scale 1000000     # a stack kept by `bench_scale --keep`

Data: per scale, scratch databases like bench_dbt (simulate, ingest, full `dbt build`), then one
alert tick and one recommendation pass so the Alerts and Recommendations pages have rows. No
churn model is trained and no forecast is written here (bench_churn and bench_forecast time
those): the Overview's churn column and the Forecasts page read empty ml.* tables.

Driver: `streamlit.testing.v1.AppTest`, one per session, each in its own thread of ONE process
- the way one Streamlit server runs every session's script in a thread of its process and
shares its per-process caches and connection pools. Every session logs in through the login
form (bcrypt, a row in app.user_sessions), opens its page (session i -> page i mod 8, as admin
so every page is reachable) and then reruns it every `--period` seconds, the sessions spread
evenly over the period. Caveats, all making the figures pessimistic:
- AppTest reruns the whole page script; in a browser the 30 s timer reruns only the page's live
  fragments (`st.fragment(run_every=...)`), so a real refresh does less work than measured.
- A rerun's time includes AppTest's own work (building the element tree from the protobuf
  deltas, its 1 ms completion polling), not websocket delivery or browser rendering.
- AppTest is not thread-safe as shipped: it swaps the global `Runtime` instance per run. The
  bench pins one shared mock runtime (as one real server has one runtime) and keeps
  `global.appTest` on for the whole run; nothing else is changed.
A rerun that has not finished within `--stuck-s` seconds counts as a stuck session.

Modes: "PostgreSQL" makes Redis unavailable to the query cache (its client returns None, as
after the circuit breaker opened); "Redis" uses the real Redis, warmed first. In both the
app's per-process cache (10 s) is turned off, so every rerun reads its store; with it on, 50
sessions in one process would mostly read memory. Redis keys live 30 s (the app's TTL), as long
as the refresh period, so some reruns in the Redis mode refill from PostgreSQL: the hit rate is
printed. Every page reads its data through `data.cached_query` (the Alerts and Recommendations
pages too, since their reads moved to the versioned cache); only the session check and the
admin page read PostgreSQL directly in both modes.

Besides wall times, the bench prints the process CPU spent per rerun (all threads: the page
scripts and AppTest's own work, divided by the reruns): on a shared machine a rerun's wall time
is mostly waiting for a core, and the CPU figure says what a rerun costs by itself.

Targets (issue 12): rerun p95 < 300 ms at S10 (1,000,000 customers); data access p95 < 50 ms
from Redis.
"""

from __future__ import annotations

import argparse
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

RERUN_TARGET_MS = 300.0
REDIS_TARGET_MS = 50.0
PASSWORD = "bench-app-password-1"
USERNAME = "bench_admin"
MODES = ("postgres", "redis")
MODE_TITLES = {"postgres": "from PostgreSQL (Redis down)", "redis": "from Redis (warm)"}


# ---------------------------------------------------------------------- figures (pure code)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks; nan if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Samples:
    """Rerun or query times in milliseconds, plus the runs that never finished or failed."""

    ms: list[float] = field(default_factory=list)
    stuck: int = 0
    errors: int = 0

    def summary(self) -> tuple[int, float, float, float]:
        return len(self.ms), percentile(self.ms, 50), percentile(self.ms, 95), max(self.ms or [0])


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f}"


def verdict(p95: float, target: float) -> str:
    if math.isnan(p95):
        return "no data"
    return "ok" if p95 < target else "MISSED"


def rerun_table(pages: Sequence[str], results: dict[str, dict[str, Samples]]) -> str:
    """One line per page: n, p50, p95, max, stuck/errors per mode, and the p95 verdict."""
    head = f"{'page':<20}"
    for mode in MODES:
        head += f" | {MODE_TITLES[mode]:<40}"
    head += f" | target p95 < {RERUN_TARGET_MS:.0f} ms"
    sub = (
        f"{'':<20}" + f" | {'n':>4} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'stuck/err':>10}" * 2
    )
    lines = [head, sub, "-" * len(head)]
    for page in pages:
        line = f"{page:<20}"
        verdicts = []
        for mode in MODES:
            s = results[mode][page]
            n, p50, p95, top = s.summary()
            line += (
                f" | {n:>4} {_ms(p50):>7} {_ms(p95):>7} {_ms(top):>7} {s.stuck:>5}/{s.errors:<4}"
            )
            verdicts.append(
                f"{'pg' if mode == 'postgres' else 'redis'} {verdict(p95, RERUN_TARGET_MS)}"
            )
        lines.append(line + " | " + ", ".join(verdicts))
    return "\n".join(lines)


def query_table(results: dict[str, dict[str, Samples]]) -> str:
    """One line per data query: p50/p95 from PostgreSQL and from Redis, and the Redis verdict."""
    names = list(results["postgres"])
    head = (
        f"{'query':<28} | {'PostgreSQL p50':>14} {'p95 ms':>7} | {'Redis p50':>9} {'p95 ms':>7}"
        f" | target Redis p95 < {REDIS_TARGET_MS:.0f} ms"
    )
    lines = [head, "-" * len(head)]
    for name in names:
        _, pg50, pg95, _ = results["postgres"][name].summary()
        _, r50, r95, _ = results["redis"][name].summary()
        lines.append(
            f"{name:<28} | {_ms(pg50):>14} {_ms(pg95):>7} | {_ms(r50):>9} {_ms(r95):>7}"
            f" | {verdict(r95, REDIS_TARGET_MS)}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------- data set


def prepare(warehouse_url: str, source_url: str, scale: int, days: int) -> None:
    """Simulate, ingest and build every model, then one alert tick and recommendation pass."""
    import psycopg

    from bench.bench_dbt import dbt_build, ingest
    from bench.common import migrate, opsdash

    print(f"[bench_app] scale {scale:,}: simulating {days} days", flush=True)
    opsdash(
        ["sim", "generate", "--scale", str(scale), "--days", str(days)],
        {"SOURCE_URL": source_url},
    )
    migrate(warehouse_url)
    ingest(warehouse_url, source_url)
    print("[bench_app] full dbt build", flush=True)
    dbt_build(warehouse_url, ["--exclude", "test_type:unit"])
    from alerting.config import load_rules
    from alerting.engine import run_tick
    from alerting.recommendations import generate_recommendations
    from opsdash_core import accounts

    with psycopg.connect(warehouse_url) as conn:
        try:
            report = run_tick(conn, load_rules(override=False), publish=False)
            print(f"[bench_app] alert tick: {len(report.created)} alerts created", flush=True)
        except Exception as exc:  # the pages still render without alerts
            conn.rollback()
            print(f"[bench_app] alert tick failed ({exc!r}); Alerts page will be empty")
        try:
            generate_recommendations(conn)
        except Exception as exc:
            conn.rollback()
            print(f"[bench_app] recommendations failed ({exc!r}); that page will be empty")
        accounts.create_user(conn, USERNAME, PASSWORD, "admin")
        conn.commit()


# ------------------------------------------------------------------ AppTest in threads


@contextmanager
def shared_runtime() -> Iterator[None]:
    """Make AppTest usable from many threads: one mock runtime for every run (AppTest sets a
    fresh one per run and None after it, which breaks a concurrent run) and `global.appTest`
    on throughout (AppTest toggles it per run)."""
    from streamlit import config
    from streamlit.components.v2.component_manager import BidiComponentManager
    from streamlit.runtime import Runtime
    from streamlit.runtime.caching.storage.dummy_cache_storage import (
        MemoryCacheStorageManager,
    )
    from streamlit.runtime.dataframe_source_manager import DataframeSourceManager
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    mock = MagicMock(spec=Runtime)
    mock.media_file_mgr = MediaFileManager(MemoryMediaFileStorage("/mock/media"))
    mock.cache_storage_manager = MemoryCacheStorageManager()
    mock.dataframe_source_mgr = DataframeSourceManager()
    components = BidiComponentManager()
    components.discover_and_register_components(start_file_watching=False)
    mock.bidi_component_registry = components
    saved = Runtime.__dict__["instance"], Runtime.__dict__["exists"]
    setattr(Runtime, "instance", classmethod(lambda cls: mock))  # noqa: B010
    setattr(Runtime, "exists", classmethod(lambda cls: True))  # noqa: B010
    old_flag = config.get_option("global.appTest")
    config.set_option("global.appTest", True)
    try:
        yield
    finally:
        Runtime.instance, Runtime.exists = saved  # type: ignore[method-assign]
        config.set_option("global.appTest", old_flag)


APP = Path(__file__).resolve().parents[1] / "app_streamlit" / "app.py"


def log_in(stuck_s: float) -> Any:
    """One AppTest session logged in through the form (what a person does)."""
    from streamlit.runtime import Runtime
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=max(stuck_s, 120))  # a loaded machine
    # Discovering the installed components costs ~2 s per AppTest; one server does it once.
    at._bidi_component_manager = Runtime.instance().bidi_component_registry
    at.run()
    at.text_input(key="login_username").input(USERNAME)
    at.text_input(key="login_password").input(PASSWORD)
    at = at.button[0].click().run()
    try:
        logged_in = at.session_state["auth_user"] is not None
    except KeyError:
        logged_in = False
    if not logged_in or at.exception:
        raise SystemExit(f"login failed: {[e.value for e in at.exception]}")
    return at


def apptest_floor(runs: int = 20) -> float:
    """Median ms of an AppTest rerun of a one-line script: the driver's own share of a rerun."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string("import streamlit as st\nst.write('x')")
    at.run()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 50)


@dataclass
class Session:
    at: Any
    page: str
    stuck: bool = False


def _rerun(session: Session, stuck_s: float) -> tuple[float | None, bool]:
    """Milliseconds of one rerun (None if stuck) and whether the page raised."""
    started = time.perf_counter()
    try:
        session.at.run(timeout=stuck_s)
    except RuntimeError as exc:
        if "timed out" in str(exc):
            session.stuck = True
            return None, False
        return (time.perf_counter() - started) * 1000, True
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, bool(session.at.exception)


def drive(
    sessions: list[Session], titles: dict[str, str], period: float, rounds: int, stuck_s: float
) -> dict[str, Samples]:
    """Every session reruns its page once per period, at its own offset in the period."""
    out = {title: Samples() for title in titles.values()}
    out[CPU_KEY] = Samples()
    lock = threading.Lock()
    start = time.monotonic() + 1.0

    def loop(i: int, session: Session) -> None:
        offset = period * i / len(sessions)
        for r in range(rounds):
            if session.stuck:
                return
            delay = start + r * period + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            ms, failed = _rerun(session, stuck_s)
            with lock:
                s = out[titles[session.page]]
                if ms is None:
                    s.stuck += 1
                else:
                    s.ms.append(ms)
                    s.errors += failed

    threads = [
        threading.Thread(target=loop, args=(i, s), daemon=True) for i, s in enumerate(sessions)
    ]
    cpu_started = time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=rounds * period + stuck_s + 60)
    reruns = sum(len(s.ms) for k, s in out.items() if k != CPU_KEY)
    cpu = out.pop(CPU_KEY)
    cpu.ms.append((time.process_time() - cpu_started) * 1000 / max(reruns, 1))
    out[CPU_KEY] = cpu
    return out


CPU_KEY = "(process CPU per rerun)"


@contextmanager
def store(mode: str) -> Iterator[None]:
    """The query cache reads PostgreSQL only (Redis unavailable) or Redis first."""
    from app_streamlit import data, view_cache

    view_cache.clear()
    saved_client, saved_ttl = data.redis_client, data.LOCAL_TTL_S
    data.LOCAL_TTL_S = 0.0  # every read goes to the store being measured
    if mode == "postgres":
        data.redis_client = lambda url=None: None  # type: ignore[assignment]
    data.clear_cache()
    try:
        yield
    finally:
        data.redis_client, data.LOCAL_TTL_S = saved_client, saved_ttl
        data.clear_cache()


@contextmanager
def counting() -> Iterator[dict[str, int]]:
    """Count the query cache's Redis hits and PostgreSQL reads while the block runs."""
    from app_streamlit import data

    counts = {"redis_hits": 0, "postgres_reads": 0}
    from_redis, from_warehouse = data._from_redis, data._from_warehouse

    def redis_read(*args: Any) -> object:
        value = from_redis(*args)
        if value is not data._MISS:
            counts["redis_hits"] += 1
        return value

    def warehouse_read(*args: Any) -> Any:
        counts["postgres_reads"] += 1
        return from_warehouse(*args)

    data._from_redis, data._from_warehouse = redis_read, warehouse_read  # type: ignore[assignment]
    try:
        yield counts
    finally:
        data._from_redis, data._from_warehouse = from_redis, from_warehouse  # type: ignore[assignment]


# ------------------------------------------------------------------------- data access


def loaders(warehouse_url: str) -> list[tuple[str, Callable[[], object]]]:
    """Each page's data functions with realistic arguments (the riskiest customer, a tutor)."""
    import psycopg

    from app_streamlit import (
        alerts_data,
        customers_data,
        data,
        forecasts_data,
        models_data,
        overview_data,
        recommendations_data,
        tutors_data,
    )
    from app_streamlit.view_params import CustomerFilters, TutorFilters

    with psycopg.connect(warehouse_url) as conn:
        row = conn.execute(
            "select customer_id from marts.customer_health order by risk_score desc limit 1"
        ).fetchone()
        customer = int(row[0]) if row else 1
        row = conn.execute("select tutor_id from marts.tutor_performance limit 1").fetchone()
        tutor = int(row[0]) if row else 1
        row = conn.execute("select subject_id from marts.supply_demand_hourly limit 1").fetchone()
        subject = int(row[0]) if row else 1
    return [
        ("health_summary", data.health_summary),
        ("top_risk_customers(50)", data.top_risk_customers),
        ("latest_alerts", data.latest_alerts),
        ("overview kpi_rows", overview_data.kpi_rows),
        ("overview alerts_by_severity", overview_data.open_alerts_by_severity),
        ("overview critical alerts", overview_data.open_critical_alerts),
        ("overview tier_counts", data.tier_counts),
        ("overview top_gaps", overview_data.top_gaps),
        ("overview recommendations", overview_data.top_recommendations),
        ("customers page (no filter)", lambda: customers_data.customer_page(CustomerFilters())),
        (
            "customers page (search)",
            lambda: customers_data.customer_page(CustomerFilters(q="smith")),
        ),
        ("customer detail", lambda: customers_data.customer_detail(customer)),
        ("customer score history", lambda: customers_data.score_history(customer)),
        ("customer recent sessions", lambda: customers_data.recent_sessions(customer)),
        ("tutors page", lambda: tutors_data.tutor_page(TutorFilters())),
        ("tutors coaching list", tutors_data.coaching_list),
        ("tutor daily", lambda: tutors_data.tutor_daily(tutor)),
        ("forecast subjects", forecasts_data.subjects),
        ("forecast actuals", lambda: forecasts_data.actuals(subject)),
        ("forecast gaps (7 days)", forecasts_data.gaps),
        ("alerts list (live)", lambda: alerts_data.list_alerts(status="live", limit=500)),
        ("recommendations list", lambda: recommendations_data.list_recommendations(limit=200)),
        ("models quality_latest", models_data.quality_latest),
        ("models raw_freshness", models_data.raw_freshness),
    ]


def measure_queries(
    queries: list[tuple[str, Callable[[], object]]], repeat: int
) -> dict[str, dict[str, Samples]]:
    out: dict[str, dict[str, Samples]] = {m: {} for m in MODES}
    for mode in MODES:
        with store(mode):
            for name, fn in queries:
                fn()  # fills Redis in the Redis mode; warms PostgreSQL's buffers in both
                s = out[mode][name] = Samples()
                for _ in range(repeat):
                    started = time.perf_counter()
                    fn()
                    s.ms.append((time.perf_counter() - started) * 1000)
    return out


# ---------------------------------------------------------------------------------- runs


@contextmanager
def _warehouse(args: argparse.Namespace, scale: int) -> Iterator[str]:
    """Scratch databases prepared at `scale`, or with --reuse the running stack's warehouse
    (its .env: OPSDASH_ENV_FILE) with every model, churn score and forecast it has built; only
    the bench's admin user is added there when missing."""
    if not args.reuse:
        from bench.common import scratch_database

        with scratch_database("app_src") as source_url, scratch_database("app_wh") as url:
            prepare(url, source_url, scale, args.days)
            yield url
        return
    import psycopg

    from opsdash_core import accounts
    from opsdash_core.settings import get_settings

    url = get_settings().warehouse_url
    customers_sql = "select count(*) from marts.customer_health"
    with psycopg.connect(url) as conn:
        customers = conn.execute(customers_sql).fetchone()[0]  # type: ignore[index]
        with suppress(accounts.UserExistsError):
            accounts.create_user(conn, USERNAME, PASSWORD, "admin")
        conn.commit()
    print(f"[bench_app] reusing the running stack's warehouse ({customers:,} scored customers)")
    yield url


def run_scale(args: argparse.Namespace, scale: int) -> None:
    import os

    from app_streamlit import data
    from app_streamlit.app import PAGES
    from opsdash_core.db import close_pools
    from opsdash_core.settings import reset_settings

    with _warehouse(args, scale) as warehouse_url:
        os.environ["WAREHOUSE_URL"] = warehouse_url
        reset_settings()
        data.KEY_PREFIX = f"opsdash:bench:q:{uuid.uuid4().hex[:8]}"  # our own cold cache
        data.clear_cache()
        try:
            titles = {path: title for path, _, title, _, _ in PAGES}
            with shared_runtime():
                print(f"[bench_app] logging {args.sessions} sessions in", flush=True)
                sessions = []
                login_started = time.monotonic()
                for i in range(args.sessions):
                    page = PAGES[i % len(PAGES)][0]
                    at = log_in(args.stuck_s)
                    at.switch_page(page).run()
                    sessions.append(Session(at, page))
                login_s = time.monotonic() - login_started
                floor = apptest_floor()
                results: dict[str, dict[str, Samples]] = {}
                hits: dict[str, dict[str, int]] = {}
                for mode in MODES:
                    with store(mode), counting() as counts:
                        if mode == "redis":  # warm: each page once fills Redis
                            for s in sessions[: len(PAGES)]:
                                s.at.run()
                            counts.update(redis_hits=0, postgres_reads=0)
                        print(
                            f"[bench_app] {mode}: {args.rounds} rounds of {args.period:.0f} s",
                            flush=True,
                        )
                        results[mode] = drive(
                            sessions, titles, args.period, args.rounds, args.stuck_s
                        )
                        hits[mode] = dict(counts)
            queries = measure_queries(loaders(warehouse_url), args.repeat)
        finally:
            close_pools()  # before the scratch database is dropped
    print(
        f"\n== app at scale {scale:,} customers: {args.sessions} sessions, each reruns its page"
        f" every {args.period:.0f} s, {args.rounds} rounds per mode =="
    )
    print(
        "driver: streamlit.testing.v1.AppTest, one per logged-in session, in threads of one"
        " process (full-page reruns; a browser's timer reruns only the live fragments; times"
        " include AppTest's tree building) - see bench/bench_app.py"
    )
    print(
        f"AppTest's floor (rerun of a one-line script, no load): {floor:.0f} ms; logins took"
        f" {login_s:.0f} s for {args.sessions} sessions (bcrypt, then the first page)"
    )
    print(rerun_table([titles[p] for p, *_ in PAGES], results))
    print(
        "process CPU per rerun (all threads, AppTest included): "
        + ", ".join(
            f"{MODE_TITLES[m]} {results[m][CPU_KEY].ms[0]:.0f} ms" for m in MODES if results[m]
        )
    )
    for mode in MODES:
        c = hits[mode]
        total = c["redis_hits"] + c["postgres_reads"]
        rate = c["redis_hits"] / total if total else 0.0
        print(
            f"{MODE_TITLES[mode]}: {c['postgres_reads']:,} PostgreSQL reads, {c['redis_hits']:,}"
            f" Redis hits ({rate:.0%} hit rate; per-process cache off)"
        )
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    stuck = sum(s.stuck for m in results.values() for s in m.values())
    print(f"stuck sessions (a rerun not done within {args.stuck_s:.0f} s): {stuck}")
    print(f"\ndata access, {args.repeat} sequential calls per query after one warm-up call:")
    print(query_table(queries))
    all_pg = [v for s in queries["postgres"].values() for v in s.ms]
    all_redis = [v for s in queries["redis"].values() for v in s.ms]
    print(
        f"all queries: PostgreSQL p95 {_ms(percentile(all_pg, 95))} ms, Redis p95"
        f" {_ms(percentile(all_redis, 95))} ms (target < {REDIS_TARGET_MS:.0f} ms):"
        f" {verdict(percentile(all_redis, 95), REDIS_TARGET_MS)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--scale", action="append", type=int, help="customers; repeatable")
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--period", type=float, default=30.0, help="seconds between refreshes")
    parser.add_argument("--rounds", type=int, default=4, help="refreshes per session and mode")
    parser.add_argument("--stuck-s", type=float, default=10.0, help="a rerun longer is stuck")
    parser.add_argument("--repeat", type=int, default=20, help="calls per query")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the running stack of OPSDASH_ENV_FILE (e.g. bench_scale --keep at S10: "
        "its marts, churn scores and forecasts) instead of preparing scratch databases; "
        "--scale then only labels the figures",
    )
    args = parser.parse_args()
    for scale in args.scale or [100_000]:
        run_scale(args, scale)


if __name__ == "__main__":
    main()

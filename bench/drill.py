"""Fault drill (issue 13, point 9): break the running stack's dependencies while `sim live`
writes, let it recover by itself, and prove with counts that nothing was lost or duplicated.

A fresh `opsdash up` on its own home and ports (small scale; `--reuse` takes a stack already
running there, started the same way by bench_alert_latency's helpers) runs every service. The
drill injects a few scenarios (a support surge, a demand spike, a bad batch whose rows must be
quarantined) so that real alerts and notifications flow through the faults, then:

1. restarts PostgreSQL (fast shutdown, start);
2. stops Redis for `--redis-minutes` (2);
3. at once: stops MLflow for `--mlflow-minutes` (10) and launches `score_churn` into that
   outage (a daily scoring run meeting an MLflow outage); makes the support API answer 500 to
   every data request for `--api-minutes` (10), through the API's own `/_control/faults`
   switch; and makes the SMTP sink refuse every message (451 after DATA) for `--smtp-minutes`
   (30). The stack's sinks process is replaced for that time by the same sinks in this
   process (opsdash_stack.sinks, same ports, same files), refusing mail. The first
   `--smtp-real-minutes` of the SMTP outage run on the real clock (the Dagster outbox sensor
   retries with its backoff); the rest runs on a simulated clock, as
   tests/integration/test_outbox_delivery.py does: this process calls
   `notify.deliver_pending(now=...)` a simulated minute at a time while the sink refuses, then
   accepts again, and keeps stepping until the outbox is drained. Rows sent on that clock carry
   a `sent_at` in the simulated future;
4. lets it settle: until every table loaded in the 5- and 15-minute cycles has a watermark past
   the end of the faults, no run is queued or running and nothing waits in the outbox (at most
   `--settle-minutes`).

A probe thread polls every service every 5 s and records each down/up transition. The report
prints the faults, what failed (probes, Dagster runs and failed sensor/schedule ticks), what
recovered by itself and when, and the counts: per raw table, source rows up to the table's
watermark = rows in raw + rows quarantined (none missing, none twice); every alert raised during
the drill notified on each channel its severity routes to, once; every outbox row `sent` and
found exactly once in the SMTP sink's files (by Message-ID) or the Slack receiver's (by outbox
id). The exit status is 1 when a count does not add up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.bench_alert_latency import pick_subjects
from bench.common import BIN
from bench.stack import stack_env, start_stack
from opsdash_core.settings import PROJECT_ROOT, Settings, get_settings, reset_settings

PROBE_EVERY_S = 5.0
# tables whose ingestion runs in the frequent cycles: the settle waits for their watermarks
FREQUENT_TABLES = ("session_requests", "sessions", "inbound_calls")
STATE_FILE = "drill-state.json"
REFUSAL = "451 4.3.0 drill: mail refused, try again later"


# --- time and the event log ------------------------------------------------------------------


@dataclass
class Log:
    t0: float = field(default_factory=time.time)
    events: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def rel(self, at: float | None) -> str:
        if at is None:
            return "-"
        s = at - self.t0
        sign = "-" if s < 0 else "+"
        return f"{sign}{int(abs(s)) // 60:02d}:{int(abs(s)) % 60:02d}"

    def say(self, text: str, at: float | None = None) -> None:
        at = time.time() if at is None else at
        with self.lock:
            self.events.append((at, text))
        print(f"[drill {self.rel(at)}] {text}", flush=True)


# --- probes ----------------------------------------------------------------------------------


def http_status(url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> int:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def pid_of(s: Settings, name: str) -> int | None:
    from opsdash_stack.supervisor import pidfile, read_pid

    return read_pid(pidfile(s, name))


def probes(s: Settings) -> dict[str, Callable[[], str | None]]:
    """Service -> a check returning None when healthy, else what is wrong."""
    import redis

    from opsdash_stack.probes import port_open

    def pg() -> str | None:
        with psycopg.connect(s.warehouse_url, connect_timeout=3) as conn:
            conn.execute("select 1")
        return None

    def rds() -> str | None:
        client = redis.Redis(
            host="127.0.0.1",
            port=s.redis_port,
            password=s.redis_password or None,
            socket_timeout=2,
            socket_connect_timeout=2,
        )
        try:
            client.ping()
        finally:
            client.close()
        return None

    def http(url: str, headers: dict[str, str] | None = None) -> Callable[[], str | None]:
        def check() -> str | None:
            code = http_status(url, headers)
            return None if code == 200 else f"HTTP {code}"

        return check

    def sinks() -> str | None:
        if not port_open(s.smtp_port):
            return "SMTP port closed"
        return http(f"http://127.0.0.1:{s.sink_http_port}/health")()

    def alive(name: str) -> Callable[[], str | None]:
        return lambda: None if pid_of(s, name) else "not running"

    def daemon() -> str | None:
        if not pid_of(s, "dagster-daemon"):
            return "not running"
        with psycopg.connect(s.dagster_pg_url, connect_timeout=3) as conn:
            row = conn.execute(
                "select extract(epoch from now() at time zone 'utc' - max(timestamp))"
                " from daemon_heartbeats"
            ).fetchone()
        age = float(row[0]) if row and row[0] is not None else None
        return None if age is not None and age < 120 else f"heartbeat {age or 0:.0f}s old"

    api = s.support_api_url.rstrip("/")
    return {
        "postgresql": pg,
        "redis": rds,
        "mlflow": http(f"http://127.0.0.1:{s.mlflow_port}/health"),
        "support-api": http(
            f"{api}/v1/inbound_calls?limit=1",
            {"Authorization": f"Bearer {s.support_api_token}"},
        ),
        "sinks": sinks,
        "dagster-webserver": http(f"http://127.0.0.1:{s.dagster_port}/server_info"),
        "dagster-daemon": daemon,
        "streamlit": http(f"http://127.0.0.1:{s.streamlit_port}/_stcore/health"),
        "simulator-live": alive("simulator-live"),
        "alert-watchdog": alive("alert-watchdog"),
    }


@dataclass
class Prober:
    checks: dict[str, Callable[[], str | None]]
    log: Log
    state: dict[str, str | None] = field(default_factory=dict)
    # (time, service, error or None when it came back)
    transitions: list[tuple[float, str, str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def poll(self) -> None:
        for name, check in self.checks.items():
            try:
                error = check()
            except Exception as exc:  # a probe failing is the finding, whatever it raised
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            before = self.state.get(name, "unknown")
            if (before is None) != (error is None) or before == "unknown":
                now = time.time()
                if before != "unknown" or error is not None:
                    self.transitions.append((now, name, error))
                    self.log.say(f"probe: {name} {'DOWN: ' + error if error else 'up again'}")
            self.state[name] = error

    def run(self) -> None:
        while not self.stop.is_set():
            self.poll()
            self.stop.wait(PROBE_EVERY_S)


# --- faults ----------------------------------------------------------------------------------


def control_api(s: Settings, body: dict[str, Any]) -> None:
    """The simulated support API's runtime fault switch (see simulator/support_api.py)."""
    req = urllib.request.Request(
        f"{s.support_api_url.rstrip('/')}/_control/faults",
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {s.support_api_token}",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def launch_job(s: Settings, job: str) -> str:
    """Submit a Dagster run the way the UI would (queued; the daemon launches it); returns
    what happened, for the report."""
    from opsdash_stack.services.dagster import WORKSPACE, dagster_home

    home = dagster_home(s)
    run_id = str(uuid.uuid4())  # the CLI does not print the id of the run it submits
    argv = [str(BIN / "dagster"), "job", "launch", "-j", job, "-w", str(WORKSPACE)]
    out = subprocess.run(
        [*argv, "--run-id", run_id],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        cwd=home,
        text=True,
        capture_output=True,
        check=False,
    )
    if out.returncode == 0:
        return f"{job} launched into the outage (run {run_id[:8]})"
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    last = text.strip().splitlines()[-1] if text.strip() else ""
    return f"{job} not launched (exit {out.returncode}): {last[:80]}"


def restart_service(s: Settings, name: str) -> None:
    from opsdash_stack.lifecycle import start_services
    from opsdash_stack.services.catalog import python_services

    (svc,) = [svc for svc in python_services(s) if svc.name == name]
    start_services(s, [svc])


@dataclass
class SmtpOutcome:
    refused: Counter[str] = field(default_factory=Counter)  # Message-ID -> refused transmissions
    sim_passes: int = 0
    sim_minutes: float = 0.0
    drained_at_sim_min: float | None = None


def pending_email(s: Settings) -> int:
    with psycopg.connect(s.warehouse_url) as conn:
        row = conn.execute(
            "select count(*) from app.notification_outbox"
            " where channel = 'email' and status in ('pending', 'sending')"
        ).fetchone()
    return int(row[0]) if row else 0


def probe_emails(s: Settings, n: int) -> list[int]:
    """Notifications of the drill's own, so that mail is waiting whatever the alerts do."""
    from opsdash_core import notify

    with psycopg.connect(s.warehouse_url) as conn:
        ids = [
            notify.enqueue(
                conn,
                "email",
                f"[opsdash drill] probe {i + 1} of {n}",
                "Sent by bench/drill.py while the SMTP sink refuses mail; it must arrive once.",
                kind="pipeline",
            )
            for i in range(n)
        ]
        conn.commit()
    return ids


@contextlib.contextmanager
def refusing_sinks(s: Settings, log: Log) -> Iterator[Any]:
    """The stack's sinks replaced by the same sinks in this process, the SMTP one refusing."""
    from opsdash_stack.sinks import smtp_sink, webhook_receiver
    from opsdash_stack.supervisor import stop_service

    base = s.opsdash_home / "outbox"
    stop_service(s, "sinks")
    try:
        with (
            smtp_sink(s.smtp_port, base / "mail") as mail,
            webhook_receiver(s.sink_http_port, base / "slack", keep_in_memory=False),
        ):
            mail.reply_after_data = REFUSAL
            log.say(f"SMTP sink refuses every message ({REFUSAL.split(' drill')[0]})")
            yield mail
    finally:
        restart_service(s, "sinks")
        log.say("stack's own sinks process started again")


def simulated_smtp_outage(
    s: Settings, mail: Any, minutes_down: float, log: Log, step_min: float = 1.0
) -> SmtpOutcome:
    """The rest of the SMTP outage on a simulated clock, then recovery until the outbox has no
    email waiting (at most 3 simulated hours)."""
    from opsdash_core import notify

    out = SmtpOutcome()
    # each refused try is counted in the report, not logged one by one
    logging.getLogger(notify.__name__).setLevel(logging.ERROR)
    start = datetime.now(UTC)
    m = 0.0
    while m < minutes_down:
        notify.deliver_pending(s.warehouse_url, s, now=start + timedelta(minutes=m))
        out.sim_passes += 1
        m += step_min
    mail.reply_after_data = None
    log.say(
        f"SMTP sink accepts mail again after {minutes_down:g} simulated minutes "
        f"({out.sim_passes} delivery passes on the simulated clock)"
    )
    while m < minutes_down + 180:
        notify.deliver_pending(s.warehouse_url, s, now=start + timedelta(minutes=m))
        out.sim_passes += 1
        if pending_email(s) == 0:
            out.drained_at_sim_min = m
            break
        m += step_min
    out.sim_minutes = m
    for msg in mail.received:
        out.refused[str(msg["Message-ID"])] += 1
    for msg in mail.messages:  # accepted ones were received too
        out.refused[str(msg["Message-ID"])] -= 1
    out.refused = +out.refused
    return out


# --- what Dagster recorded -------------------------------------------------------------------


def epoch(ts: datetime) -> float:
    """Dagster stores naive UTC timestamps."""
    return ts.replace(tzinfo=UTC).timestamp() if ts.tzinfo is None else ts.timestamp()


@dataclass
class Run:
    run_id: str
    job: str
    status: str
    created: float
    ended: float | None
    retries: int = 0
    error: str = ""


def dagster_runs(s: Settings, since: float) -> list[Run]:
    with psycopg.connect(s.dagster_pg_url) as conn:
        rows = conn.execute(
            "select run_id, pipeline_name, status, create_timestamp, end_time from runs"
            " where create_timestamp >= to_timestamp(%s) at time zone 'utc'"
            " order by create_timestamp",
            (since,),
        ).fetchall()
        runs = [Run(r[0], r[1], r[2], epoch(r[3]), r[4]) for r in rows]
        for run in runs:
            events = conn.execute(
                "select dagster_event_type, event from event_logs where run_id = %s"
                " and dagster_event_type = any(%s) order by id",
                (
                    run.run_id,
                    ["STEP_UP_FOR_RETRY", "STEP_FAILURE", "RUN_FAILURE", "ENGINE_EVENT"],
                ),
            ).fetchall()
            run.retries = sum(e[0] == "STEP_UP_FOR_RETRY" for e in events)
            # the first recorded error (a step's, or the launcher's ENGINE_EVENT with an error
            # attached), else the run failure's own message: an engine event without an error
            # ("Executing steps in process") is no cause
            run.error = next(
                (e for _k, body in events if (e := first_error(body, fallback=False))), ""
            ) or next((first_error(b) for k, b in events if k == "RUN_FAILURE"), "")
    return runs


def first_error(body: str, fallback: bool = True) -> str:
    """A short cause from a serialized Dagster event (its error message, first line); with
    `fallback`, the event's user message when it carries no error."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            msg = node.get("message")
            if isinstance(msg, str) and node.get("__class__") == "SerializableErrorInfo":
                found.append(msg)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(data)
    if not found and not fallback:
        return ""
    text = found[-1] if found else str(data.get("user_message", ""))
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line[:110]


def failed_ticks(s: Settings, since: float, until: float) -> list[tuple[str, float, str]]:
    """(instigator, time, error) of failed sensor/schedule ticks in the window."""
    with psycopg.connect(s.dagster_pg_url) as conn:
        rows = conn.execute(
            "select timestamp, tick_body from job_ticks where status = 'FAILURE'"
            " and timestamp >= (to_timestamp(%s) at time zone 'utc')"
            " and timestamp <= (to_timestamp(%s) at time zone 'utc') order by timestamp",
            (since, until),
        ).fetchall()
    out = []
    for ts, body in rows:
        try:
            data = json.loads(body)
        except ValueError:
            data = {}
        name = str(data.get("instigator_name") or data.get("job_name") or "?")
        out.append((name, epoch(ts), first_error(body)))
    return out


# --- the counts ------------------------------------------------------------------------------


@dataclass
class TableCount:
    table: str
    watermark: datetime | None
    source: int
    in_raw: int
    quarantined: int
    lost: list[int]
    duplicated: int
    not_in_source: int
    loaded_during: int
    after_watermark: int
    after_quarantined: int


def source_relation(source: str | None) -> str:
    return source if source else "support.inbound_calls"


def count_tables(s: Settings, t0: float) -> list[TableCount]:
    """Per raw table, up to its watermark: every source row is in raw (same updated_at) or
    quarantined; no raw row twice; no raw row that the source does not hold."""
    from orchestration.lib.ingest.tables import TABLES

    out = []
    with psycopg.connect(s.warehouse_url) as wh, psycopg.connect(s.source_url) as src:
        marks: dict[str, datetime] = dict(
            wh.execute("select table_name, watermark from raw.watermarks").fetchall()
        )
        for spec in TABLES:
            w = marks.get(spec.name)
            rel = source_relation(spec.source)
            source: dict[int, datetime] = dict(
                src.execute(f"select id, updated_at from {rel}").fetchall()
            )
            raw_rows = wh.execute(
                f"select id, updated_at, _ingested_at from {spec.raw_relation}"
            ).fetchall()
            quarantined = {
                r[0]
                for r in wh.execute(
                    "select distinct source_key from raw.quarantine where table_name = %s",
                    (spec.name,),
                )
            }
            per_id = Counter(int(r[0]) for r in raw_rows)
            raw_version = {int(r[0]): r[1] for r in raw_rows}
            upto = {i: u for i, u in source.items() if w is not None and u <= w}
            in_raw = {i for i, u in upto.items() if raw_version.get(i) == u}
            quar = {i for i in upto if i not in in_raw and str(i) in quarantined}
            lost = sorted(set(upto) - in_raw - quar)
            after = {i for i, u in source.items() if w is None or u > w}
            out.append(
                TableCount(
                    table=spec.name,
                    watermark=w,
                    source=len(upto),
                    in_raw=len(in_raw),
                    quarantined=len(quar),
                    lost=lost,
                    duplicated=sum(n - 1 for n in per_id.values() if n > 1),
                    not_in_source=len(set(per_id) - set(source)),
                    loaded_during=sum(epoch(r[2]) >= t0 for r in raw_rows),
                    after_watermark=len(after),
                    after_quarantined=sum(str(i) in quarantined for i in after),
                )
            )
    return out


@dataclass
class OutboxCount:
    channel: str
    rows: int
    by_status: Counter[str]
    delivered_once: int
    missing: list[int]
    twice: list[int]
    unknown_files: int


def sink_files(home: Path) -> tuple[Counter[str], Counter[int]]:
    """Message-ID -> .eml files holding it; outbox id -> Slack .json files holding it."""
    import email

    mails: Counter[str] = Counter()
    for path in (home / "outbox" / "mail").glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes())
        mails[str(msg.get("Message-ID", "")).strip()] += 1
    posts: Counter[int] = Counter()
    for path in (home / "outbox" / "slack").glob("*.json"):
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        meta = body.get("metadata") if isinstance(body, dict) else None
        oid = ((meta or {}).get("event_payload") or {}).get("outbox_id")
        if oid is not None:
            posts[int(oid)] += 1
    return mails, posts


def count_outbox(s: Settings) -> list[OutboxCount]:
    """Every outbox row of the stack against the sinks' files. Rows parked for the daily
    digest (`digest`, `folded`) are counted by status only: they are sent as one digest row."""
    mails, posts = sink_files(s.opsdash_home)
    with psycopg.connect(s.warehouse_url) as conn:
        rows = conn.execute(
            "select id, channel, status, message_id from app.notification_outbox order by id"
        ).fetchall()
    out = []
    known_ids = {str(r[3]).strip() for r in rows if r[1] == "email" and r[3]}
    for channel in ("email", "slack"):
        mine = [r for r in rows if r[1] == channel]
        sent = [r for r in mine if r[2] == "sent"]
        if channel == "email":
            got = {r[0]: mails.get(str(r[3]).strip(), 0) for r in sent}
            unknown = sum(n for mid, n in mails.items() if mid not in known_ids)
        else:
            got = {r[0]: posts.get(r[0], 0) for r in sent}
            unknown = sum(n for oid, n in posts.items() if oid not in {r[0] for r in mine})
        # a file for a row that is not `sent` would be a send the outbox does not know about
        unsent_with_file = [
            r[0]
            for r in mine
            if r[2] != "sent"
            and (mails.get(str(r[3]).strip(), 0) if channel == "email" else posts.get(r[0], 0))
        ]
        out.append(
            OutboxCount(
                channel=channel,
                rows=len(mine),
                by_status=Counter(r[2] for r in mine),
                delivered_once=sum(n == 1 for n in got.values()),
                missing=[i for i, n in got.items() if n == 0],
                twice=[i for i, n in got.items() if n > 1] + unsent_with_file,
                unknown_files=unknown,
            )
        )
    return out


@dataclass
class AlertCount:
    raised: int
    notified: int
    not_notified: list[tuple[int, str, str]]  # id, rule, why
    missing_channel: list[tuple[int, str]]
    duplicate_channel: list[tuple[int, str]]
    by_rule: Counter[str]


def count_alerts(s: Settings, t0: float) -> AlertCount:
    """Alerts raised since `t0`: each notified once on every channel its severity routes to
    (first notification: kinds alert, summary, pipeline; repeats and resolutions are extra)."""
    from opsdash_core import notify

    with psycopg.connect(s.warehouse_url) as conn:
        alerts = conn.execute(
            "select id, rule, severity, notify_count, coalesce(suppressed_by, ''), status"
            " from app.alerts where created_at >= to_timestamp(%s) order by id",
            (t0,),
        ).fetchall()
        firsts = conn.execute(
            "select unnest(alert_ids), channel from app.notification_outbox"
            " where kind in ('alert', 'summary', 'pipeline') and alert_ids <> '{}'"
        ).fetchall()
    per = Counter((int(a), str(c)) for a, c in firsts)
    result = AlertCount(len(alerts), 0, [], [], [], Counter(a[1] for a in alerts))
    for aid, rule, severity, notify_count, suppressed, status in alerts:
        if not notify_count:
            why = f"suppressed by {suppressed}" if suppressed else f"not notified ({status})"
            result.not_notified.append((aid, rule, why))
            continue
        result.notified += 1
        channels = {"email" if r == "digest" else r for r in notify.route(severity, s)}
        for ch in sorted(channels):
            n = per.get((aid, ch), 0)
            if n == 0:
                result.missing_channel.append((aid, ch))
            elif n > 1:
                result.duplicate_channel.append((aid, ch))
    return result


# --- settle ----------------------------------------------------------------------------------


def settled(s: Settings, after: float) -> tuple[bool, str]:
    """Frequent tables' watermarks past `after`, no run queued or running, no mail waiting."""
    with psycopg.connect(s.warehouse_url) as wh:
        marks: dict[str, float] = dict(
            wh.execute(
                "select table_name, extract(epoch from watermark)::float8 from raw.watermarks"
            ).fetchall()
        )
        waiting = wh.execute(
            "select count(*) from app.notification_outbox where status in ('pending', 'sending')"
        ).fetchone()
    with psycopg.connect(s.dagster_pg_url) as dg:
        busy = dg.execute(
            "select count(*) from runs where status in ('QUEUED', 'NOT_STARTED', 'STARTING',"
            " 'STARTED', 'CANCELING')"
        ).fetchone()
    behind = [t for t in FREQUENT_TABLES if float(marks.get(t) or 0) < after]
    n_wait = int(waiting[0]) if waiting else 0
    n_busy = int(busy[0]) if busy else 0
    why = []
    if behind:
        why.append(f"watermark before the faults' end: {', '.join(behind)}")
    if n_busy:
        why.append(f"{n_busy} Dagster run(s) queued or running")
    if n_wait:
        why.append(f"{n_wait} notification(s) waiting")
    return not why, "; ".join(why)


# --- the report ------------------------------------------------------------------------------


@dataclass
class Fault:
    name: str
    start: float
    end: float | None = None
    note: str = ""


def first_after(times: list[float], at: float) -> float | None:
    later = [t for t in times if t >= at]
    return min(later) if later else None


def report(
    log: Log,
    faults: list[Fault],
    prober: Prober,
    runs: list[Run],
    ticks: list[tuple[str, float, str]],
    smtp: SmtpOutcome | None,
    tables: list[TableCount],
    outbox: list[OutboxCount],
    alerts: AlertCount,
    scenario_alerts: dict[str, list[int]],
) -> bool:
    ok = True
    rel = log.rel
    print("\n## Faults injected (times from the drill's start)")
    print(f"{'fault':<44} {'from':>6} {'to':>6}  note")
    for f in faults:
        print(f"{f.name:<44} {rel(f.start):>6} {rel(f.end):>6}  {f.note}")

    print("\n## What failed, and when it recovered by itself")
    print(f"{'service (probe every 5 s)':<22} {'down':>6} {'up':>6} {'after':>7}  first error")
    open_down: dict[str, tuple[float, str]] = {}
    for at, name, error in prober.transitions:
        if error is not None and name not in open_down:
            open_down[name] = (at, error)
        elif error is None and name in open_down:
            down_at, why = open_down.pop(name)
            print(f"{name:<22} {rel(down_at):>6} {rel(at):>6} {at - down_at:>6.0f}s  {why[:70]}")
    for name, (down_at, why) in open_down.items():
        ok = False
        print(f"{name:<22} {rel(down_at):>6} {'NEVER':>6} {'':>7}  {why[:70]}  <-- still down")

    print(f"\n{'Dagster run':<28} {'created':>7} {'status':<8} {'retries':>7} {'ended':>6}  cause")
    for r in runs:
        if r.status != "SUCCESS" or r.retries:
            print(
                f"{r.job:<28} {rel(r.created):>7} {r.status:<8} {r.retries:>7} "
                f"{rel(r.ended):>6}  {r.error}"
            )
    by_job = Counter((r.job, r.status) for r in runs)
    print(
        "runs in the drill: "
        + ", ".join(f"{job} {st.lower()} {n}" for (job, st), n in sorted(by_job.items()))
    )
    if ticks:
        print(f"\nfailed sensor/schedule ticks: {len(ticks)}")
        for name, n in Counter(t[0] for t in ticks).most_common():
            span = [t[1] for t in ticks if t[0] == name]
            cause = next(t[2] for t in ticks if t[0] == name)
            print(f"  {name:<38} {n:>3}  {rel(min(span))}..{rel(max(span))}  {cause}")
    else:
        print("\nfailed sensor/schedule ticks: none")

    print("\n## Recovery per fault (first success after the fault ended)")
    ok_runs = [r for r in runs if r.status == "SUCCESS" and r.ended]
    for f in faults:
        if f.end is None:
            continue
        lines = []
        for job in ("incremental_cycle", "ingest_support_calls", "score_churn"):
            done = first_after([r.ended for r in ok_runs if r.job == job and r.ended], f.end)
            if done is not None:
                lines.append(f"{job} ok at {rel(done)} (+{done - f.end:.0f}s)")
        back = [at for at, _n, err in prober.transitions if err is None and at >= f.start]
        if back:
            lines.insert(0, f"all probes green by {rel(max(back))}")
        print(f"{f.name:<44} " + "; ".join(lines))
    if smtp is not None:
        tries = sorted(smtp.refused.values())
        print(
            f"SMTP: {sum(tries)} refused transmissions of {len(tries)} messages "
            f"(max {max(tries) if tries else 0} per message, same Message-ID each time); "
            f"{smtp.sim_passes} passes on the simulated clock, outbox drained at simulated "
            f"minute {smtp.drained_at_sim_min if smtp.drained_at_sim_min is not None else '-'}"
        )

    print("\n## Source rows: source (updated_at <= the table's watermark) = raw + quarantined")
    print(
        f"{'table':<21} {'watermark':<20} {'source':>7} {'raw':>7} {'quar.':>6} {'lost':>5} "
        f"{'twice':>5} {'extra':>5} {'loaded in drill':>15}  after watermark (quarantined)"
    )
    for t in tables:
        wm = t.watermark.astimezone(UTC).strftime("%m-%d %H:%M:%S") if t.watermark else "-"
        print(
            f"{t.table:<21} {wm:<20} {t.source:>7} {t.in_raw:>7} {t.quarantined:>6} "
            f"{len(t.lost):>5} {t.duplicated:>5} {t.not_in_source:>5} {t.loaded_during:>15}  "
            f"{t.after_watermark} ({t.after_quarantined})"
        )
        if t.lost or t.duplicated or t.not_in_source:
            ok = False
            if t.lost:
                print(f"  lost ids: {t.lost[:20]}")

    print("\n## Notifications: outbox rows against the sinks' files")
    print(
        f"{'channel':<8} {'rows':>5} {'sent':>5} {'once':>5} {'missing':>7} {'twice':>5} "
        f"{'unknown files':>13}  other statuses"
    )
    for o in outbox:
        others = ", ".join(f"{k} {v}" for k, v in sorted(o.by_status.items()) if k != "sent")
        print(
            f"{o.channel:<8} {o.rows:>5} {o.by_status.get('sent', 0):>5} {o.delivered_once:>5} "
            f"{len(o.missing):>7} {len(o.twice):>5} {o.unknown_files:>13}  {others or '-'}"
        )
        given_up = sum(o.by_status.get(k, 0) for k in ("failed", "given_up"))
        waiting = sum(o.by_status.get(k, 0) for k in ("pending", "sending"))
        if waiting:
            print(f"  {waiting} still waiting for their next attempt at the end (not lost yet)")
        if o.missing or o.twice or o.unknown_files or given_up:
            ok = False
            if o.missing:
                print(f"  sent but not in the sink: {o.missing[:20]}")
            if o.twice:
                print(f"  in the sink more than once, or while not sent: {o.twice[:20]}")

    print("\n## Alerts raised during the drill")
    print(
        f"{alerts.raised} raised ({', '.join(f'{k} {v}' for k, v in alerts.by_rule.most_common())}"
        f"); {alerts.notified} notified; missing a routed channel: "
        f"{len(alerts.missing_channel)}; notified twice on a channel: "
        f"{len(alerts.duplicate_channel)}"
    )
    for aid, rule, why in alerts.not_notified:
        print(f"  alert {aid} {rule}: {why}")
    for aid, ch in alerts.missing_channel:
        print(f"  alert {aid}: no {ch} notification")
    for aid, ch in alerts.duplicate_channel:
        print(f"  alert {aid}: {ch} notification twice")
    if alerts.missing_channel or alerts.duplicate_channel:
        ok = False
    for scenario, ids in scenario_alerts.items():
        print(f"  injected {scenario}: alerts {ids if ids else 'NONE (not raised)'}")
        if not ids:
            ok = False
    print(f"\nverdict: {'nothing lost, nothing duplicated' if ok else 'SEE ABOVE: counts differ'}")
    return ok


def scenario_alert_ids(s: Settings, t0: float, injected: list[str]) -> dict[str, list[int]]:
    rules = {"support-surge": "support_surge", "demand-spike": "demand_surge"}
    out: dict[str, list[int]] = {}
    with psycopg.connect(s.warehouse_url) as conn:
        for scenario in injected:
            if scenario not in rules:
                continue
            rows = conn.execute(
                "select id from app.alerts where rule = %s and not is_summary"
                " and (created_at >= to_timestamp(%s) or last_seen_at >= to_timestamp(%s))"
                " order by id",
                (rules[scenario], t0, t0),
            ).fetchall()
            out[scenario] = [int(r[0]) for r in rows]
    return out


# --- main ------------------------------------------------------------------------------------


def drill_env(home: Path) -> dict[str, str]:
    """The drill stack's environment (no variable of the caller's instance, warnings routed to
    email too) at the product's own cadences."""
    return stack_env(home, {"OPSDASH_ROUTE_WARNING": "email,slack"})


def use_stack(home: Path) -> Settings:
    """This process's environment becomes the stack's (nothing of the caller's leaks in)."""
    from opsdash_stack.envfile import load_into_environ

    env = drill_env(home)
    os.environ.clear()
    os.environ.update(env)
    # as the `opsdash` CLI does: services restarted from here (and `dagster job launch`) get
    # the same environment as those `opsdash up` started
    load_into_environ(home / ".env")
    reset_settings()
    return get_settings()


def sleep_until(at: float) -> None:
    while time.time() < at:
        time.sleep(min(1.0, max(0.0, at - time.time())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=2000, help="customers of the fresh stack")
    parser.add_argument("--days", type=int, default=30, help="days of history")
    parser.add_argument("--home", type=Path, default=PROJECT_ROOT / ".local" / "drill")
    parser.add_argument("--port-offset", type=int, default=70)
    parser.add_argument("--reuse", action="store_true", help="drill the stack running at --home")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument("--pg-settle", type=float, default=60.0, help="seconds after the restart")
    parser.add_argument("--redis-minutes", type=float, default=2.0)
    parser.add_argument("--mlflow-minutes", type=float, default=10.0)
    parser.add_argument("--api-minutes", type=float, default=10.0)
    parser.add_argument("--smtp-minutes", type=float, default=30.0, help="refusal, in all")
    parser.add_argument(
        "--smtp-real-minutes",
        type=float,
        default=None,
        help="of which on the real clock [default: as long as the MLflow outage]",
    )
    parser.add_argument("--settle-minutes", type=float, default=8.0, help="at most")
    parser.add_argument("--probe-emails", type=int, default=3, help="drill's own emails")
    parser.add_argument("--bad-rows", type=int, default=6, help="bad-batch rows (0: none)")
    parser.add_argument("--no-score", action="store_true", help="no score_churn in the outage")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help=f"no faults: the last drill's report again ({STATE_FILE} in --home), counts now",
    )
    args = parser.parse_args()
    home: Path = args.home.resolve()
    real_smtp = min(
        args.smtp_minutes,
        args.mlflow_minutes if args.smtp_real_minutes is None else args.smtp_real_minutes,
    )

    if args.report_only:
        s = use_stack(home)
        finish(s, json.loads((home / STATE_FILE).read_text()))
        return
    started = time.monotonic()
    if not args.reuse:
        env = drill_env(home)
        if (home / ".env").exists():
            subprocess.run([str(BIN / "opsdash"), "down"], env=env, cwd=PROJECT_ROOT, check=False)
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
    s = use_stack(home)
    try:
        if not args.reuse:
            start_stack(dict(os.environ), home, args.port_offset, args.scale, args.days, "drill")
            print(
                f"fresh opsdash up ({args.scale:,} customers, {args.days} days) in "
                f"{time.monotonic() - started:.0f} s",
                flush=True,
            )
        s = use_stack(home)
        drill(s, args, real_smtp)
    finally:
        if not args.keep:
            subprocess.run(
                [str(BIN / "opsdash"), "down"], env=dict(os.environ), cwd=PROJECT_ROOT, check=False
            )


def drill(s: Settings, args: argparse.Namespace, real_smtp: float) -> None:
    from opsdash_stack.services import postgres, redis
    from opsdash_stack.supervisor import stop_service

    log = Log()
    prober = Prober(probes(s), log)
    deadline = time.time() + 300  # a fresh stack's daemon takes a while to beat
    while True:
        prober.poll()
        down = {n: e for n, e in prober.state.items() if e}
        if not down:
            break
        if time.time() > deadline:
            raise SystemExit(f"not every service is healthy before the drill: {down}")
        time.sleep(PROBE_EVERY_S)
    prober.transitions.clear()
    log.t0 = time.time()
    log.say("every service healthy; the drill starts")
    thread = threading.Thread(target=prober.run, name="probes", daemon=True)
    thread.start()
    faults: list[Fault] = []
    injected: list[str] = []

    def sim(*argv: str) -> None:
        out = subprocess.run(
            [str(BIN / "opsdash"), "sim", "inject", *argv],
            env=dict(os.environ),
            cwd=PROJECT_ROOT,
            text=True,
            capture_output=True,
            check=True,
        )
        injected.append(argv[0])
        log.say(out.stdout.strip().splitlines()[0] if out.stdout.strip() else argv[0])

    sim("support-surge", "--factor", "20", "--hours", "1")
    subjects = pick_subjects(s.source_url, 1)
    if subjects:
        # The simulator's default 6 h, as bench_alert_latency injects it: a 1-hour spike adds
        # ~4 requests at this scale, under demand_surge's min_requests (8), and raised nothing.
        sim("demand-spike", "--subject", subjects[0], "--factor", "4")
    if args.bad_rows:
        sim("bad-batch", "--rows", str(args.bad_rows))

    # 1. PostgreSQL restart
    f = Fault("PostgreSQL restart (fast shutdown, start)", time.time())
    faults.append(f)
    postgres.stop(s)
    postgres.start(s)
    f.end = time.time()
    f.note = f"down {f.end - f.start:.0f} s"
    log.say(f"PostgreSQL restarted ({f.note})")
    sleep_until(f.end + args.pg_settle)

    # 2. Redis
    f = Fault(f"Redis stopped {args.redis_minutes:g} min", time.time())
    faults.append(f)
    redis.stop(s)
    log.say("Redis stopped")
    sleep_until(f.start + args.redis_minutes * 60)
    redis.start(s)
    f.end = time.time()
    log.say("Redis started again")

    # 3. MLflow, support API and SMTP at once (each timed from its own start)
    mlf = Fault(f"MLflow stopped {args.mlflow_minutes:g} min", time.time())
    faults.append(mlf)
    stop_service(s, "mlflow")
    log.say("MLflow stopped")
    launcher: threading.Thread | None = None
    if not args.no_score:  # `dagster job launch` loads the code location: minutes at load

        def launch() -> None:
            mlf.note = launch_job(s, "score_churn")
            log.say(mlf.note)

        launcher = threading.Thread(target=launch, name="launch", daemon=True)
        launcher.start()
    api = Fault(f"support API answers 500 for {args.api_minutes:g} min", time.time())
    faults.append(api)
    control_api(s, {"fail_next": 10**9, "status": 500})
    log.say("support API: every data request answers 500")
    outcome: SmtpOutcome | None = None
    smtp = Fault(f"SMTP sink refuses mail {args.smtp_minutes:g} min ({real_smtp:g} real)", 0.0)
    faults.append(smtp)
    with refusing_sinks(s, log) as mail:
        smtp.start = time.time()
        probe_ids = probe_emails(s, args.probe_emails)
        log.say(f"queued the drill's own emails: outbox {probe_ids}")
        ends = sorted(
            [
                (mlf.start + args.mlflow_minutes * 60, "mlflow"),
                (api.start + args.api_minutes * 60, "api"),
                (smtp.start + real_smtp * 60, "smtp"),
            ]
        )
        for at, what in ends:
            sleep_until(at)
            if what == "mlflow":
                restart_service(s, "mlflow")
                mlf.end = time.time()
                log.say("MLflow started again")
            elif what == "api":
                control_api(s, {"fail_next": 0})
                api.end = time.time()
                log.say("support API answers normally again")
            else:
                outcome = simulated_smtp_outage(s, mail, args.smtp_minutes - real_smtp, log)
                smtp.end = time.time()
                smtp.note = (
                    f"{args.smtp_minutes - real_smtp:g} min on the simulated clock "
                    f"({outcome.sim_passes} passes)"
                )
    if launcher is not None:
        launcher.join()
    faults_end = max(f.end or 0 for f in faults)

    # 4. settle
    log.say(f"settling (at most {args.settle_minutes:g} min)")
    deadline = time.time() + args.settle_minutes * 60
    why = ""
    while time.time() < deadline:
        done, why = settled(s, faults_end)
        if done:
            break
        time.sleep(10)
    else:
        log.say(f"not settled after {args.settle_minutes:g} min: {why}")
    if not why:
        log.say("settled")
    time.sleep(PROBE_EVERY_S * 2)
    prober.stop.set()
    thread.join(timeout=30)
    state = {
        "t0": log.t0,
        "faults": [vars(f) for f in faults],
        "transitions": prober.transitions,
        "smtp": None if outcome is None else {**vars(outcome), "refused": dict(outcome.refused)},
        "injected": injected,
        "ended": time.time(),
    }
    (s.opsdash_home / STATE_FILE).write_text(json.dumps(state))
    finish(s, state)


def finish(s: Settings, state: dict[str, Any]) -> None:
    """The report, from what the drill recorded (`--report-only` prints it again later, with
    the counts taken again)."""
    log = Log(t0=state["t0"])
    prober = Prober({}, log, transitions=[tuple(x) for x in state["transitions"]])
    smtp = state["smtp"]
    outcome = None if smtp is None else SmtpOutcome(**{**smtp, "refused": Counter(smtp["refused"])})
    t0 = log.t0 - 5
    ok = report(
        log,
        [Fault(**f) for f in state["faults"]],
        prober,
        dagster_runs(s, t0),
        failed_ticks(s, t0, time.time()),
        outcome,
        count_tables(s, t0),
        count_outbox(s),
        count_alerts(s, t0),
        scenario_alert_ids(s, t0, state["injected"]),
    )
    print(
        f"drill wall time {state['ended'] - log.t0:.0f} s (after the stack was up); "
        f"counts taken {time.time() - state['ended']:.0f} s after it"
    )
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

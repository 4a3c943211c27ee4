"""Alert detection latency and accuracy on a running stack (issue 11, point 7).

A fresh `opsdash up` on its own home and ports (small scale, so it is quick) runs every service,
`sim live` included, with the incremental cycle and the support-calls ingestion every
`--cadence` minutes (OPSDASH_CYCLE_MINUTES, OPSDASH_SUPPORT_CALLS_MINUTES; default 1). Once the
alert rules have taken their baseline, scenarios are injected among the live traffic: demand
spikes (a different subject each time), tutor no-show streaks (a different tutor each time),
one support surge at the scenario's default x5 (the rule has a single entity whose alert stays
live while the surge's calls are in the last hour, so a second surge within the bench would only
add an occurrence to the same alert) and customers going quiet (one customer per injection, see
below). The bench then waits for the notifications in the local sinks' files and prints, per
scenario, injection -> alert raised and injection -> email / Slack received (p50/p95, from the
files' receipt times), the alerts' precision and recall against truth.scenarios, and where the
time went (Dagster's run records: wait for the run that loaded the data, its duration, the
sensor tick after it, and group_wait plus sending).

`--reuse HOME` measures a stack already running at HOME instead (one `opsdash up` with sim live
and a 1-minute cadence, e.g. the one `make bench` keeps up): its `.env` gives the databases, its
sinks' `HOME/outbox/` the receipts, and its own routing applies. On a stack that has run for a
while, the bench injects only where no live or baselined alert would absorb the injection (an
alert that stays live only adds occurrences), scores only the alerts raised from its start, and
counts an alert caused by a scenario injected before it (truth.scenarios, window still open) as
right rather than as a false positive.

What this measures and what it does not:
- Warning alerts go to Slack only by default; this stack sets OPSDASH_ROUTE_WARNING=email,slack
  so that the email path is measured for every scenario.
- Customer goes quiet: a customer who stops coming shows mostly as days without sessions pass,
  which a real-clock bench of minutes cannot see. What does change at once is what the customer
  had booked: `sim inject customer-quiet --customer ID` cancels their booked sessions (and
  withdraws pending requests). The bench injects it only for customers for whom marts.
  customer_health says that cancellation alone makes a customer-risk rule's condition true:
  established customers with no completed session for `risk_force_inactive_days` (dbt var) and
  something booked (nothing booked any more forces them to the high tier), or customers whose
  score plus their current recency points (the recency risk is halved while a session is booked)
  reaches the high tier or the rule's 7-day rise. So the condition becomes true in the source
  data at the injection, and the latency is measured from it, like the other scenarios.
  Precision is not scored for this scenario: customers outside it who cross the same thresholds
  through live traffic raise real alerts that no ground truth marks wrong (they are counted).
"""

from __future__ import annotations

import argparse
import email
import json
import os
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import yaml  # type: ignore[import-untyped,unused-ignore]  # PyYAML comes with dagster and dbt
from psycopg.rows import dict_row

from bench.common import BIN
from bench.stack import CADENCE_SETTINGS, env_file, stack_env, start_stack
from opsdash_core.settings import PROJECT_ROOT, Settings

# scenario -> the alert rules that answer it
RULES = {
    "demand-spike": ("demand_surge",),
    "tutor-no-shows": ("tutor_no_show_streak",),
    "support-surge": ("support_surge",),
    "customer-quiet": ("customer_critical", "customer_at_risk"),
}
SCENARIO_RULES = ("demand_surge", "tutor_no_show_streak", "support_surge")
# the job whose run loads what each scenario's rule reads
LOADED_BY = {
    "demand-spike": "incremental_cycle",
    "tutor-no-shows": "incremental_cycle",
    "support-surge": "ingest_support_calls",
    "customer-quiet": "incremental_cycle",
}
TARGET_P95_S = 120.0
TARGET_SCORE = 0.9
MSGID = re.compile(r"opsdash-outbox-(\d+)\.")


@dataclass
class Injection:
    id: int
    scenario: str
    started: float
    hours: float
    entities: set[str]
    alert_at: float | None = None
    email_at: float | None = None
    slack_at: float | None = None
    alert_ids: set[int] = field(default_factory=set)
    alert_rule: str = ""


def cadence_settings() -> set[str]:
    """The cadence settings this checkout has (older ones had the crons fixed in code)."""
    aliases = {f.alias for f in Settings.model_fields.values()}
    return {name for name in CADENCE_SETTINGS if name in aliases}


def latency_env(home: Path, cadence: int) -> dict[str, str]:
    """The bench stack's environment plus the warning-to-email route and the fast cadences."""
    extra = {"OPSDASH_ROUTE_WARNING": "email,slack"}
    return stack_env(home, extra | {name: str(cadence) for name in cadence_settings()})


def run(args: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(
        [str(BIN / "opsdash"), *args],
        env=env,
        cwd=PROJECT_ROOT,
        check=True,
        text=True,
        stdout=subprocess.PIPE,
    )
    return out.stdout


BASELINED = (*SCENARIO_RULES, "customer_critical", "customer_at_risk")


def wait_for_baseline(warehouse: str, timeout_s: float) -> float:
    """Until every scenario rule has taken its first evaluation (baseline), so that what exists
    before the injections is covered by the one summary alert and not scored."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with psycopg.connect(warehouse) as conn:
            done = conn.execute(
                "select count(*), extract(epoch from max(baseline_at))::float8 "
                "from app.alert_rule_state where rule = any(%s) and baseline_at is not null",
                (list(BASELINED),),
            ).fetchone()
        if done and done[0] == len(BASELINED):
            return float(done[1]) + 0.001  # the baseline tick's own alerts are not scored
        time.sleep(5)
    raise SystemExit(f"the alert rules took no baseline within {timeout_s:.0f} s")


def pick_subjects(source: str, k: int, exclude: Collection[int] = ()) -> list[str]:
    """Subjects with steady demand in the last week (a spike on a dead subject proves little),
    other than `exclude` (ids)."""
    with psycopg.connect(source) as conn:
        rows = conn.execute(
            "select s.name from session_requests r join subjects s on s.id = r.subject_id "
            "where r.created_at > now() - interval '7 days' and not (s.id = any(%s)) "
            "group by s.name order by count(*) desc, s.name limit %s",
            (list(exclude), k),
        ).fetchall()
    return [r[0] for r in rows]


def pick_tutors(source: str, k: int, exclude: Collection[int] = ()) -> list[int]:
    """Busy tutors with no tutor no-show in the last 72 h (so the streak is the injected one),
    other than `exclude`."""
    with psycopg.connect(source) as conn:
        rows = conn.execute(
            "select tutor_id from tutoring_sessions "
            "where scheduled_at > now() - interval '72 hours' and scheduled_at <= now() "
            "and not (tutor_id = any(%s)) "
            "group by tutor_id having count(*) filter (where no_show_by = 'tutor') = 0 "
            "order by count(*) filter (where status = 'completed') desc, tutor_id limit %s",
            (list(exclude), k),
        ).fetchall()
    return [int(r[0]) for r in rows]


# Entities an injection could not alert on: a live alert (the injection would only add an
# occurrence to it), or covered by the rule's baseline summary or left quiet after a person
# closed it (both until the condition clears; an active key whose alert was just closed turns
# quiet at the next evaluation). A fresh stack has none; a running one (--reuse),
# e.g. after an earlier bench's 6-hour spikes, may.
BUSY_SQL = """
select a.rule, a.dedupe_key
from app.alerts as a
where a.rule = any(%(rules)s) and a.status in ('open', 'acknowledged') and not a.is_summary
union
select s.rule, s.rule || ':' || k.key
from app.alert_rule_state as s
cross join lateral jsonb_array_elements_text(
    coalesce(s.state -> 'baseline_keys', '[]') || coalesce(s.state -> 'quiet_keys', '[]')
    || coalesce(s.state -> 'active_keys', '[]')
) as k (key)
where s.rule = any(%(rules)s)
"""


def busy_entities(warehouse: str) -> dict[str, set[str]]:
    """Rule -> the entity keys an injection cannot alert on now (see BUSY_SQL)."""
    busy: dict[str, set[str]] = {rule: set() for rule in SCENARIO_RULES}
    with psycopg.connect(warehouse) as conn:
        for rule, key in conn.execute(BUSY_SQL, {"rules": list(SCENARIO_RULES)}).fetchall():
            busy[rule].add(str(key).removeprefix(f"{rule}:"))
    return busy


def ids(keys: set[str]) -> list[int]:
    return sorted(int(k) for k in keys if k.isdigit())


def alert_tick_seconds() -> str:
    """The alert sensors' interval in this checkout (read from the source: importing the
    sensors module would load the whole code location)."""
    source = (PROJECT_ROOT / "orchestration" / "defs" / "alerting" / "sensors.py").read_text()
    found = re.search(r"^ALERT_TICK_SECONDS = (\d+)", source, re.M)
    return found.group(1) if found else "60"


def dbt_vars() -> dict[str, Any]:
    return dict(
        yaml.safe_load((PROJECT_ROOT / "dbt_project" / "dbt_project.yml").read_text())["vars"]
    )


def rule_params(name: str) -> dict[str, Any]:
    rules = yaml.safe_load((PROJECT_ROOT / "alerting" / "rules.yaml").read_text())["rules"]
    return dict(next(r for r in rules if r["name"] == name).get("params", {}))


QUIET_CANDIDATES_SQL = """
select customer_id, risk_score, risk_tier, days_since_last_session, recency_points,
    risk_score_change_7d,
    case when scoring_profile = 'established' and days_since_last_session >= %(inactive)s
        then 'nothing booked after ' || days_since_last_session || ' days without a session: '
            || 'forced to high'
        else 'recency no longer halved: +' || round(recency_points::numeric, 1) || ' points'
    end as why
from marts.customer_health
where risk_tier = any(%(below)s) and sessions_booked_ahead > 0
    and coalesce(risk_score_change_7d, 0) < %(rise)s
    and (
        (scoring_profile = 'established' and days_since_last_session >= %(inactive)s)
        or risk_score + recency_points >= %(high)s
        or coalesce(risk_score_change_7d, 0) + recency_points >= %(rise)s
    )
order by (scoring_profile = 'established' and days_since_last_session >= %(inactive)s) desc,
    risk_score + recency_points desc, customer_id
"""


def pick_quiet(warehouse: str, source: str, k: int) -> list[tuple[int, str]]:
    """Customers for whom cancelling what they booked makes a customer-risk rule's condition
    true (see the module docstring), with the reason; in the source, everything they have booked
    from today on must still be ahead (cancellable), else the cancellation changes nothing."""
    tiers, rise = dbt_vars()["risk_tiers"], rule_params("customer_at_risk")["score_rise_points"]
    params = {
        "inactive": int(dbt_vars()["risk_force_inactive_days"]),
        "high": float(tiers["high"]),
        "rise": float(rise),
        "below": [t for t, v in tiers.items() if float(v) < float(tiers["high"])] + ["low"],
    }
    with psycopg.connect(warehouse) as conn:
        rows = conn.execute(QUIET_CANDIDATES_SQL, params).fetchall()
    if not rows:
        return []
    with psycopg.connect(source) as conn:
        ok = {
            int(r[0])
            for r in conn.execute(
                "select customer_id from tutoring_sessions where customer_id = any(%s) "
                "and scheduled_at >= date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' "
                "and status <> 'cancelled' group by customer_id "
                "having bool_and(status = 'scheduled' and scheduled_at > now() + interval '10 min')",
                ([int(r[0]) for r in rows],),
            ).fetchall()
        }
    return [(int(r[0]), str(r[6])) for r in rows if int(r[0]) in ok][:k]


def injection(row: tuple[int, str, dict[str, Any], float]) -> Injection:
    sc_id, scenario, params, started = row
    entities = {
        "demand-spike": lambda: {str(params["subject_id"])},
        "tutor-no-shows": lambda: {str(params["tutor_id"])},
        "support-surge": lambda: {"support_calls"},
        "customer-quiet": lambda: {str(c) for c in params["customer_ids"]},
    }[scenario]()
    return Injection(sc_id, scenario, started, float(params["hours"]), entities)


TRUTH_SQL = (
    "select id, scenario, params, extract(epoch from started_at)::float8 from truth.scenarios "
    "where scenario = any(%s) "
)


def inject(env: dict[str, str], source: str, args: list[str]) -> Injection:
    print(run(["sim", "inject", *args], env).strip(), flush=True)
    with psycopg.connect(source) as conn:
        row = conn.execute(TRUTH_SQL + "order by id desc limit 1", (list(RULES),)).fetchone()
    assert row is not None
    return injection(row)


def recorded(source: str, since: float) -> list[Injection]:
    """The scenarios truth.scenarios holds since `since` (to score a run again: --score-only)."""
    with psycopg.connect(source) as conn:
        rows = conn.execute(
            TRUTH_SQL + "and started_at >= to_timestamp(%s) order by id", (list(RULES), since)
        ).fetchall()
    return [injection(r) for r in rows]


def earlier_truth(source: str, before: float, mine: list[Injection]) -> list[Injection]:
    """Scenarios injected before this run (a reused stack's earlier benches or drills) whose
    window is still open: an alert they cause during this run is right, not a false positive,
    though it is no measurement of this run."""
    own = {i.id for i in mine}
    with psycopg.connect(source) as conn:
        rows = conn.execute(
            TRUTH_SQL + "and started_at >= to_timestamp(%s) - interval '2 days' "
            "and started_at < to_timestamp(%s) order by id",
            (list(RULES), before, before),
        ).fetchall()
    found = [injection(r) for r in rows]
    return [i for i in found if i.id not in own and i.started + i.hours * 3600 >= before]


def receipts(home: Path) -> tuple[dict[int, float], dict[int, float]]:
    """Outbox id -> when the sink received it (file mtime), for the email and Slack sinks."""
    mails: dict[int, float] = {}
    for path in (home / "outbox" / "mail").glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes())
        found = MSGID.search(str(msg.get("Message-ID", "")))
        if found:
            mails.setdefault(int(found.group(1)), path.stat().st_mtime)
    posts: dict[int, float] = {}
    for path in (home / "outbox" / "slack").glob("*.json"):
        try:
            body = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        meta = body.get("metadata") if isinstance(body, dict) else None
        oid = ((meta or {}).get("event_payload") or {}).get("outbox_id")
        if oid is not None:
            posts.setdefault(int(oid), path.stat().st_mtime)
    return mails, posts


def scenario_alerts(warehouse: str, since: float) -> list[dict[str, Any]]:
    """Non-summary alerts of the scenarios' rules raised since `since`, with their outbox rows."""
    rules = sorted({r for rs in RULES.values() for r in rs})
    with psycopg.connect(warehouse, row_factory=dict_row) as conn:
        alerts = conn.execute(
            "select a.id, a.rule, a.dedupe_key, extract(epoch from a.created_at)::float8 as at, "
            "coalesce(array_agg(o.id) filter (where o.channel = 'email'), '{}') as email_ids, "
            "coalesce(array_agg(o.id) filter (where o.channel = 'slack'), '{}') as slack_ids "
            "from app.alerts as a left join app.notification_outbox as o "
            "on a.id = any(o.alert_ids) "
            "where a.rule = any(%s) and not a.is_summary and a.created_at >= to_timestamp(%s) "
            "group by a.id order by a.id",
            (rules, since),
        ).fetchall()
    for a in alerts:
        a["entity"] = a["dedupe_key"].removeprefix(f"{a['rule']}:")
    return alerts


def score(injections: list[Injection], alerts: list[dict[str, Any]], home: Path) -> set[int]:
    """Match alerts to injections (rule answers the scenario, entity matches, raised within the
    scenario's window); fill each injection's first alert/email/Slack times. Returns the ids of
    matched alerts."""
    mails, posts = receipts(home)
    matched: set[int] = set()
    for inj in injections:
        for a in alerts:
            if (
                a["rule"] in RULES[inj.scenario]
                and a["entity"] in inj.entities
                and inj.started <= a["at"] <= inj.started + inj.hours * 3600
            ):
                matched.add(a["id"])
                inj.alert_ids.add(a["id"])
                if inj.alert_at is None or a["at"] < inj.alert_at:
                    inj.alert_rule = a["rule"]
                inj.alert_at = min(filter(None, [inj.alert_at, a["at"]]))
                got = [mails[i] for i in a["email_ids"] if i in mails]
                if got:
                    inj.email_at = min(filter(None, [inj.email_at, *got]))
                got = [posts[i] for i in a["slack_ids"] if i in posts]
                if got:
                    inj.slack_at = min(filter(None, [inj.slack_at, *got]))
    return matched


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def fmt_latency(values: list[float], n: int) -> str:
    if not values:
        return f"{'-':>7} {'-':>7}  0/{n}"
    return f"{pct(values, 0.5):>6.0f}s {pct(values, 0.95):>6.0f}s  {len(values)}/{n}"


def report(
    injections: list[Injection],
    alerts: list[dict[str, Any]],
    matched: set[int],
    emailed: set[str],
    earlier: Collection[int] = (),
) -> None:
    print(
        f"\n{'scenario':<15} {'n':>2} | {'alert raised p50/p95':>22} | "
        f"{'email received p50/p95':>22} | {'Slack received p50/p95':>22} | "
        f"{'precision':>9} {'recall':>6}"
    )
    for scenario in RULES:
        inj = [i for i in injections if i.scenario == scenario]
        if not inj:
            continue
        n = len(inj)
        of_rules = [a for a in alerts if a["rule"] in RULES[scenario]]
        tp = sum(a["id"] in matched for a in of_rules)
        precision = tp / len(of_rules) if of_rules else float("nan")
        recall = sum(bool(i.alert_ids) for i in inj) / n
        note = f"({tp} of {len(of_rules)} alerts matched"
        prior = sum(a["id"] in earlier for a in of_rules)
        note += f", {prior} of them to scenarios injected before this run)" if prior else ")"
        if scenario == "customer-quiet":
            # risk alerts on customers outside the scenario come from live traffic crossing the
            # same thresholds: real alerts that no ground truth marks wrong, so not scored
            precision = float("nan")
            note = f"({tp} alerts on quiet customers; {len(of_rules) - tp} on others, not scored)"
        lat = [
            fmt_latency([t - i.started for i in inj if (t := getattr(i, attr)) is not None], n)
            for attr in ("alert_at", "email_at", "slack_at")
        ]
        if scenario not in emailed:
            lat[1] = "not routed to email"
        print(
            f"{scenario:<15} {n:>2} | {lat[0]:>22} | {lat[1]:>22} | {lat[2]:>22} | "
            f"{'n/a' if precision != precision else f'{precision:.2f}':>9} {recall:>6.2f}   {note}"
        )
    print(
        f"targets: email and Slack p95 < {TARGET_P95_S:.0f}s; precision and recall >= "
        f"{TARGET_SCORE}"
    )
    unmatched = [
        a
        for a in alerts
        if a["rule"] in SCENARIO_RULES and a["id"] not in matched and a["id"] not in earlier
    ]
    for a in unmatched:
        at = datetime.fromtimestamp(a["at"], UTC).strftime("%H:%M:%S")
        print(f"  false positive: alert {a['id']} {a['rule']} {a['entity']} at {at}")


@dataclass
class RunSpan:
    job: str
    status: str
    started: float
    ended: float | None


def dagster_runs(dagster_url: str, since: float) -> list[RunSpan]:
    """The runs Dagster recorded (its `runs` table) of the jobs that load the scenarios' data."""
    with psycopg.connect(dagster_url) as conn:
        rows = conn.execute(
            "select pipeline_name, status, start_time, end_time from runs "
            "where pipeline_name = any(%s) and start_time >= %s order by start_time",
            (sorted(set(LOADED_BY.values())), since),
        ).fetchall()
    return [RunSpan(r[0], r[1], float(r[2]), r[3] and float(r[3])) for r in rows]


def loading_run(runs: list[RunSpan], inj: Injection) -> RunSpan | None:
    """The run that loaded the injected rows: the first run of the scenario's job started after
    the injection, or the one running at the injection if that one already led to the alert."""
    job = [r for r in runs if r.job == LOADED_BY[inj.scenario] and r.ended]
    after = next((r for r in job if r.started >= inj.started), None)
    if after and inj.alert_at and after.started > inj.alert_at:
        after = None
    if after is None:
        after = next((r for r in job if r.started < inj.started < (r.ended or 0)), None)
    return after


def where_time_goes(injections: list[Injection], runs: list[RunSpan]) -> None:
    """Per scenario, medians of: injection -> start of the loading run (cadence and queue), the
    run (ingest + dbt), run end -> alert raised (sensor tick), alert -> delivered (group_wait,
    the next tick, sending)."""
    print(
        "\nwhere the time goes (medians, s): injection -> loading run starts | run (from the "
        "later of start and injection) | run end -> alert raised | alert -> email / Slack"
    )
    for scenario in RULES:
        parts: list[tuple[float, float, float, float, float]] = []
        for inj in injections:
            if inj.scenario != scenario or inj.alert_at is None:
                continue
            run = loading_run(runs, inj)
            if run is None or run.ended is None:
                continue
            begin = max(run.started, inj.started)
            nan = float("nan")
            parts.append(
                (
                    run.started - inj.started,
                    run.ended - begin,
                    inj.alert_at - run.ended,
                    (inj.email_at or nan) - inj.alert_at,
                    (inj.slack_at or nan) - inj.alert_at,
                )
            )
        if not parts:
            continue
        med = [
            statistics.median(v) if (v := [p[k] for p in parts if p[k] == p[k]]) else float("nan")
            for k in range(5)
        ]
        print(
            f"  {scenario:<15} ({LOADED_BY[scenario]}, {len(parts)} runs) "
            f"{med[0]:>5.0f} | {med[1]:>5.0f} | {med[2]:>5.0f} | {med[3]:>4.0f} / {med[4]:>4.0f}"
        )
    for job in sorted(set(LOADED_BY.values())):
        done = [r.ended - r.started for r in runs if r.job == job and r.ended]
        if done:
            print(
                f"  {job} runs during the bench: {len(done)}, duration median "
                f"{statistics.median(done):.0f} s, max {max(done):.0f} s"
            )


def check_reused(conf: dict[str, str], sinks_home: Path, source: str) -> None:
    """Say what a reused stack lets this bench measure: the receivers it reads, live traffic."""
    if not conf.get("ALERT_EMAIL_TO") or not conf.get("SLACK_WEBHOOK_URL"):
        print(
            "warning: the stack's .env sets no ALERT_EMAIL_TO or SLACK_WEBHOOK_URL: nothing to time"
        )
    for channel in ("mail", "slack"):
        if not (sinks_home / "outbox" / channel).is_dir():
            print(
                f"warning: {sinks_home / 'outbox' / channel} missing: is `opsdash sinks` running?"
            )
    with psycopg.connect(source) as conn:
        row = conn.execute(
            "select (select count(*) from session_requests"
            "        where updated_at > now() - interval '15 min')"
            " + (select count(*) from tutoring_sessions"
            "    where updated_at > now() - interval '15 min')"
        ).fetchone()
    if not row or not row[0]:
        print("warning: no request or session changed in 15 min: is `opsdash sim live` running?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=3000, help="customers of the fresh stack")
    parser.add_argument("--days", type=int, default=60, help="days of history")
    parser.add_argument(
        "--repeats", type=int, default=3, help="rounds: a demand spike and a no-show streak each"
    )
    parser.add_argument(
        "--quiet-per-round", type=int, default=2, help="customer-quiet injections per round"
    )
    parser.add_argument("--spacing", type=float, default=100.0, help="seconds between rounds")
    parser.add_argument(
        "--cadence",
        type=int,
        default=1,
        help="minutes between incremental cycles and between support-calls ingestions",
    )
    parser.add_argument(
        "--wait", type=float, default=900.0, help="max seconds from the first injection"
    )
    parser.add_argument(
        "--score-only",
        action="store_true",
        help="no injection: score what truth.scenarios holds since the baseline (with --reuse)",
    )
    parser.add_argument("--home", type=Path, default=PROJECT_ROOT / ".local" / "bench-alerts")
    parser.add_argument("--port-offset", type=int, default=130)
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument(
        "--reuse",
        nargs="?",
        const="",
        default=None,
        metavar="HOME",
        help="measure the stack already running at HOME (default: --home), e.g. one `opsdash "
        "up` started with sim live and a 1-minute cadence: its .env gives the databases, its "
        "outbox/ the received email and Slack posts; implies --keep",
    )
    args = parser.parse_args()
    if args.reuse:
        args.home = Path(args.reuse)
    args.reuse = args.reuse is not None
    home: Path = args.home.resolve()
    env = latency_env(home, args.cadence)

    if args.reuse:
        if not (home / ".env").exists():
            raise SystemExit(f"--reuse: no stack at {home} (no .env); start one with opsdash up")
        args.keep = True
        env.pop("OPSDASH_ROUTE_WARNING")
        for name in CADENCE_SETTINGS:
            env.pop(name, None)  # the running stack's own, from its .env
    elif (home / ".env").exists():
        subprocess.run([str(BIN / "opsdash"), "down"], env=env, cwd=PROJECT_ROOT, check=False)
    if not args.reuse:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
    started = time.monotonic()
    try:
        if not args.reuse:
            start_stack(env, home, args.port_offset, args.scale, args.days, "bench_alert_latency")
        if args.reuse:
            print(f"measuring the stack already running at {home} (--reuse)")
        else:
            print(
                f"fresh opsdash up ({args.scale:,} customers, {args.days} days) in "
                f"{time.monotonic() - started:.0f} s; sim live runs as a service"
            )
        conf = env_file(home)
        env |= {"SOURCE_URL": conf["SOURCE_URL"], "WAREHOUSE_URL": conf["WAREHOUSE_URL"]}
        warehouse, source = conf["WAREHOUSE_URL"], conf["SOURCE_URL"]
        # where the stack's SMTP sink and webhook receiver write (opsdash sinks)
        sinks_home = Path(conf.get("OPSDASH_HOME") or home)
        if args.reuse:
            check_reused(conf, sinks_home, source)
        baseline = wait_for_baseline(warehouse, 900)
        print(f"alert rules baselined {time.monotonic() - started:.0f} s after start")
        # A reused stack's alerts before this run (earlier benches, live traffic) are not
        # this run's to score; --score-only scores what truth holds since the baseline.
        since = baseline if args.score_only or not args.reuse else max(baseline, time.time())
        # support_surge and customer_critical are critical (email and Slack); the rest warnings
        route = env.get("OPSDASH_ROUTE_WARNING") or conf.get("OPSDASH_ROUTE_WARNING", "slack")
        have = cadence_settings()
        minutes = {name: env.get(name) or conf.get(name) or "default" for name in sorted(have)}
        print(
            "cadence: "
            + (
                ", ".join(f"{k}={v}" for k, v in minutes.items())
                if have
                else "as shipped in code (cycle every 5 min, support calls every 15 min)"
            )
            + f"; alert sensors every {alert_tick_seconds()} s; warning alerts routed to {route} "
            "(default: slack)"
        )
        print(
            f"machine load at injection: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
            f"{os.getloadavg()[2]:.2f} (1/5/15 min), {os.cpu_count()} CPUs"
        )

        busy = busy_entities(warehouse)
        subjects = pick_subjects(source, args.repeats, exclude=ids(busy["demand_surge"]))
        tutors = pick_tutors(source, args.repeats, exclude=ids(busy["tutor_no_show_streak"]))
        surge_busy = "support_calls" in busy["support_surge"]
        if surge_busy and not args.score_only:
            print("support-surge not injected: a support_surge alert is live (or baselined)")
        quiet = (
            []
            if args.score_only
            else pick_quiet(warehouse, source, args.repeats * args.quiet_per_round)
        )
        for cid, why in quiet:
            print(f"customer-quiet candidate {cid}: {why}")
        injections: list[Injection] = recorded(source, since) if args.score_only else []
        for r in range(0 if args.score_only else args.repeats):
            if r:
                time.sleep(args.spacing)
            if r < len(subjects):
                injections.append(
                    inject(env, source, ["demand-spike", "--subject", subjects[r], "--factor", "4"])
                )
            if r < len(tutors):
                injections.append(
                    inject(
                        env, source, ["tutor-no-shows", "--tutor", str(tutors[r]), "--rate", "1"]
                    )
                )
            if r == 0 and not surge_busy:
                # one surge: a second one while the first alert is live is the same incident
                injections.append(inject(env, source, ["support-surge"]))
            for cid, _why in quiet[r * args.quiet_per_round : (r + 1) * args.quiet_per_round]:
                injections.append(
                    inject(env, source, ["customer-quiet", "--customer", str(cid), "--hours", "24"])
                )

        emailed = {i.scenario for i in injections if "email" in route}
        emailed.add("support-surge")

        earlier = earlier_truth(source, since, injections)

        def complete(i: Injection) -> bool:
            # a customer-critical alert is emailed whatever the warning route
            mail = i.email_at or (i.scenario not in emailed and i.alert_rule != "customer_critical")
            return bool(i.slack_at and mail)

        first = min((i.started for i in injections), default=time.time())
        deadline = time.monotonic() + args.wait - (time.time() - first)
        while time.monotonic() < deadline:
            score(injections, scenario_alerts(warehouse, since), sinks_home)
            if all(complete(i) for i in injections):
                break
            time.sleep(10)
        time.sleep(5)  # a last tick's stray alerts count against precision too
        alerts = scenario_alerts(warehouse, since)
        for i in injections:
            i.alert_ids.clear()
            i.alert_at = i.email_at = i.slack_at = None
        matched = score(injections, alerts, sinks_home)
        prior = score(earlier, alerts, sinks_home) - matched
        report(injections, alerts, matched | prior, emailed, prior)
        latencies = [t - i.started for i in injections for t in (i.email_at, i.slack_at) if t]
        if latencies:
            print(
                f"all deliveries: median {statistics.median(latencies):.0f} s, "
                f"max {max(latencies):.0f} s"
            )
        if "DAGSTER_PG_URL" in conf:
            where_time_goes(injections, dagster_runs(conf["DAGSTER_PG_URL"], since - 600))
        print(f"bench wall time {time.monotonic() - started:.0f} s")
        print(
            f"machine load at the end: {os.uname().nodename}: "
            + " ".join(f"{x:.2f}" for x in os.getloadavg())
        )
    finally:
        if not args.keep:
            # --purge: as root the cluster lives under /var/lib/opsdash, outside the home
            subprocess.run(
                [str(BIN / "opsdash"), "down", "--purge"], env=env, cwd=PROJECT_ROOT, check=False
            )


if __name__ == "__main__":
    main()

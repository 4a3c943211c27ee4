"""What Dagster itself recorded about runs: the benchmarks' figures come from its storage, not
from our own stopwatches, so they are the numbers a data engineer sees in the Dagster UI.

Reads the instance's PostgreSQL tables directly (`runs`, `event_logs`): opening a
`DagsterInstance` would import the whole of Dagster into the benchmark for a few queries.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from opsdash_stack.progress import stage_of


@dataclass(frozen=True)
class StepSpan:
    step: str
    started: float
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def stage(self) -> str:
        return stage_of(self.step)


@dataclass
class RunRecord:
    run_id: str
    job: str
    status: str
    created: float
    started: float | None
    ended: float | None
    steps: list[StepSpan] = field(default_factory=list)
    # When the previous run of the same job ended, if after this one was created: a schedule
    # queues the next cycle while one runs (orchestration/lib/schedules.py), and the time it
    # waits for its lane is the previous cycle's, not its own.
    previous_ended: float | None = None

    @property
    def queued_s(self) -> float:
        """Waiting for the previous run of its job to end (0 when the lane was free)."""
        return max(0.0, (self.previous_ended or self.created) - self.created)

    @property
    def launch_s(self) -> float | None:
        """From the run's creation (the schedule tick) or, if it was queued behind the previous
        run of its job, from that run's end, to its process start."""
        return None if self.started is None else self.started - self.created - self.queued_s

    @property
    def total_s(self) -> float | None:
        """Launch to finish, as the UI shows a run's duration plus its launch; a wait behind the
        previous run of the job is left out (queued_s)."""
        return None if self.ended is None else self.ended - self.created - self.queued_s

    @property
    def setup_s(self) -> float | None:
        """Run process start to its first step: process start-up and the code location import."""
        if self.started is None or not self.steps:
            return None
        return min(s.started for s in self.steps) - self.started

    def critical_path(self, slack_s: float = 2.0) -> list[StepSpan]:
        """The chain of steps that set the run's length, first to last: from the step that
        ended last, back through the step that ended latest before each one started (within
        `slack_s`: a step starts a moment after what it waited for). Steps run side by side, so
        the stage sums overlap; this chain is what a faster step would actually shorten."""
        if not self.steps:
            return []
        chain = [max(self.steps, key=lambda s: s.ended)]
        while True:
            before = [
                s
                for s in self.steps
                if s.ended <= chain[-1].started + slack_s
                and s is not chain[-1]
                and s.started < chain[-1].started
            ]
            if not before:
                return chain[::-1]
            chain.append(max(before, key=lambda s: s.ended))

    def by_stage(self) -> dict[str, float]:
        """Wall seconds per stage (ingest, checks, dbt, ...), summed over its steps."""
        out: dict[str, float] = {}
        for span in self.steps:
            out[span.stage] = out.get(span.stage, 0.0) + span.seconds
        return out


def _epoch(ts: datetime) -> float:
    """Dagster stores naive UTC timestamps."""
    return ts.replace(tzinfo=UTC).timestamp() if ts.tzinfo is None else ts.timestamp()


def step_spans(conn: psycopg.Connection, run_id: str) -> list[StepSpan]:
    """Each step's start and end (success or failure) from the run's event log."""
    rows = conn.execute(
        "select step_key, dagster_event_type, timestamp from event_logs "
        "where run_id = %s and step_key is not null and dagster_event_type = any(%s) "
        "order by id",
        (run_id, ["STEP_START", "STEP_SUCCESS", "STEP_FAILURE"]),
    ).fetchall()
    starts: dict[str, float] = {}
    spans = []
    for step, kind, ts in rows:
        if kind == "STEP_START":
            starts[step] = _epoch(ts)
        elif step in starts:
            spans.append(StepSpan(step, starts.pop(step), _epoch(ts)))
    return spans


def runs(conn: psycopg.Connection, job: str | None = None, since: float = 0.0) -> list[RunRecord]:
    """Runs (of `job`, or all) created after `since` (epoch seconds), oldest first, with steps."""
    rows = conn.execute(
        "select run_id, pipeline_name, status, create_timestamp, start_time, end_time from runs "
        "where (%s::text is null or pipeline_name = %s) and create_timestamp >= %s "
        "order by create_timestamp",
        (job, job, datetime.fromtimestamp(since, UTC).replace(tzinfo=None)),
    ).fetchall()
    out: list[RunRecord] = []
    last_ended: dict[str, float] = {}
    for run_id, name, status, created, started, ended in rows:
        rec = RunRecord(run_id, name, status, _epoch(created), started, ended)
        rec.steps = step_spans(conn, run_id)
        before = last_ended.get(name)
        if before is not None and before > rec.created:
            rec.previous_ended = before
        if ended is not None:
            last_ended[name] = max(ended, last_ended.get(name, 0.0))
        out.append(rec)
    return out


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def p50_p95(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} / {pct(values, 95):.1f} s"


ROWS_READ = re.compile(r'"rows_read".{0,200}?"value":\s*(\d+)', re.S)


def rows_read(conn: psycopg.Connection, run_id: str) -> int:
    """Source rows the run's ingestion assets read (their `rows_read` materialization metadata,
    as the asset's page in the UI shows it)."""
    rows = conn.execute(
        "select event from event_logs where run_id = %s and dagster_event_type = %s",
        (run_id, "ASSET_MATERIALIZATION"),
    ).fetchall()
    return sum(int(m.group(1)) for (event,) in rows if (m := ROWS_READ.search(event)))

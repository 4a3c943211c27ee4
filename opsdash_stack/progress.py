"""Readable progress for `opsdash up`'s first build (one materialization of every asset).

`dagster asset materialize` prints several hundred lines of DEBUG events (and dbt's own log) for
one cold build; an operator needs the stage, how many assets are done of how many, which one is
running and for how long. The child's output goes to a log file in full; its structured event
lines (`... - dagster - DEBUG - <job> - <run id> - <pid> - <step> - STEP_START - ...`) are parsed
as they arrive and drive a live `rich` bar on a terminal, or one plain line per stage otherwise
(CI and tests capture stdout, where a live bar would only be noise).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

# The run id, the step key (absent for run-level events) and the event type of one event line.
# `search`, not `match`: dbt's unterminated progress lines can precede an event on the same line.
EVENT_LINE = re.compile(
    r" - dagster - [A-Z]+ - \S+ - (?P<run>[0-9a-f]{8}-[0-9a-f-]{27}) - \d+ - "
    r"(?:(?P<step>[A-Za-z0-9_]+) - )?(?P<kind>[A-Z_]+) - (?P<msg>.*)$"
)
MATERIALIZED = re.compile(r"^Materialized value (?P<key>.+?)\.?$")
# Step keys of the checks on the raw tables: the blocking ones per table or for the dimensions
# (`raw__sessions_checks`, `raw__dimension_checks`), the warnings one by one (`raw__sessions_trends`).
CHECK_SUFFIXES = ("_checks", "_valid_batch", "_quarantine_rate", "_trends")
FAILURE_CONTEXT_LINES = 40
# The running step's text on the bar: with the other columns, a line fits 80 columns.
CURRENT_WIDTH = 30


@dataclass(frozen=True)
class Event:
    run_id: str
    kind: str
    step: str | None
    message: str


def parse_line(line: str) -> Event | None:
    """The Dagster event on one line of the child's output, or None for anything else."""
    m = EVENT_LINE.search(line.rstrip("\n"))
    if not m:
        return None
    return Event(m["run"], m["kind"], m["step"], m["msg"])


def stage_of(step: str) -> str:
    """The build stage a person would name for a step key (`raw__sessions` -> ingest)."""
    if step.startswith("raw__"):
        return "checks" if step.endswith(CHECK_SUFFIXES) else "ingest"
    if "dbt" in step:
        return "dbt"
    if "forecast" in step:
        return "forecasts"
    if "churn_model" in step:
        return "churn training"
    if "churn_scores" in step:
        return "churn scoring"
    if "monitoring" in step:
        return "model monitoring"
    if "recommendation" in step:
        return "recommendations"
    return "other"


def step_label(step: str) -> str:
    """`raw__sessions_valid_batch` -> `raw/sessions_valid_batch`: asset-key spelling."""
    return step.replace("__", "/")


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


@dataclass
class BuildState:
    """What the event lines so far say about the run."""

    started: float
    total: int | None = None
    run_id: str | None = None
    stage: str | None = None
    current: str | None = None
    last_asset: str | None = None
    done: set[str] = field(default_factory=set)
    failed_steps: list[str] = field(default_factory=list)
    run_failed: bool = False

    def feed(self, ev: Event) -> bool:
        """Apply one event; True when the stage changed (a plain-progress line is due)."""
        self.run_id = self.run_id or ev.run_id
        if ev.kind == "STEP_START" and ev.step:
            self.current = ev.step
            self.last_asset = None
            new_stage = stage_of(ev.step)
            changed = new_stage != self.stage
            self.stage = new_stage
            return changed
        if ev.kind == "ASSET_MATERIALIZATION":
            m = MATERIALIZED.match(ev.message)
            if m:
                self.last_asset = m["key"].replace(" ", "/")
                self.done.add(self.last_asset)
        elif ev.kind == "STEP_FAILURE" and ev.step:
            self.failed_steps.append(ev.step)
        elif ev.kind == "RUN_FAILURE":
            self.run_failed = True
        return False

    def doing(self) -> str:
        """The running step; for a multi-asset step (dbt) also the asset it last finished."""
        if not self.current:
            return "" if self.run_id else "Dagster definitions"
        if self.last_asset and stage_of(self.current) == "dbt":
            return self.last_asset  # dbt builds many: the one it finished last
        return step_label(self.current)

    def summary(self, now: float) -> str:
        total = f"/{self.total}" if self.total else ""
        return f"{len(self.done)}{total} assets, {elapsed(now - self.started)} elapsed"


def failure_excerpt(lines: list[str], failed_step: str | None) -> list[str]:
    """The failing step's part of the log: from its start (at most 10 lines before its
    STEP_FAILURE event) through the traceback that follows; the log's tail when no step failed
    (e.g. the code location did not import)."""
    if failed_step:
        start_marker = f" - {failed_step} - STEP_START - "
        fail_marker = f" - {failed_step} - STEP_FAILURE - "
        started = 0
        for i, line in enumerate(lines):
            if start_marker in line:
                started = i
            elif fail_marker in line:
                return lines[max(started, i - 10) : i + FAILURE_CONTEXT_LINES]
    return lines[-FAILURE_CONTEXT_LINES:]


TotalLookup = Callable[[str], int | None]


class _Display:
    """A live bar on a terminal, plain lines elsewhere; both print stage changes."""

    def __init__(self, state: BuildState, live: bool) -> None:
        self.state = state
        self.live = live
        self._progress: object | None = None
        self._task: int | None = None

    def __enter__(self) -> _Display:
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.table import Column

            progress = Progress(
                TextColumn("[bold]{task.fields[stage]}", table_column=Column(width=16)),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("assets"),
                TimeElapsedColumn(),
                TextColumn(
                    "{task.fields[current]}",
                    table_column=Column(no_wrap=True, overflow="ellipsis"),
                ),
                transient=True,
            )
            progress.start()
            self._task = progress.add_task(
                "build", total=None, stage="loading", current="Dagster definitions"
            )
            self._progress = progress
        return self

    def stage_line(self) -> None:
        st = self.state
        now = st.current and step_label(st.current)
        self.note(f"{st.stage}: {now}  ({st.summary(time.monotonic())})")

    def note(self, message: str) -> None:
        """One line above the bar (or alone, without one)."""
        text = f"[opsdash]   {message}"
        if self._progress is not None:
            self._progress.console.print(text, highlight=False, markup=False)  # type: ignore[attr-defined]
        else:
            print(text, flush=True)

    def refresh(self) -> None:
        if self._progress is None or self._task is None:
            return
        st = self.state
        self._progress.update(  # type: ignore[attr-defined]
            self._task,
            completed=len(st.done),
            total=st.total,
            stage=st.stage or "loading",
            current=shorten(st.doing(), CURRENT_WIDTH),
        )

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()  # type: ignore[attr-defined]


def follow(
    lines: Iterable[str],
    log: IO[str],
    state: BuildState,
    live: bool,
    total_lookup: TotalLookup | None = None,
) -> list[str]:
    """Copy every line to `log`, keep the state and the display current; returns the lines."""
    kept: list[str] = []
    with _Display(state, live) as display:
        for line in lines:
            log.write(line)
            kept.append(line)
            ev = parse_line(line)
            if ev is None:
                continue
            # At the run's start: every planned materialization is stored by then.
            if state.total is None and total_lookup is not None and ev.kind == "RUN_START":
                state.total = total_lookup(ev.run_id)
            if state.feed(ev):
                display.stage_line()
            elif ev.kind == "RUN_START":
                what = f"{state.total} assets" if state.total else "every asset"
                took = elapsed(time.monotonic() - state.started)
                display.note(
                    f"Dagster run {ev.run_id[:8]} started ({what}; definitions loaded in {took})"
                )
            display.refresh()
    return kept


def run_build(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log_path: Path,
    total_lookup: TotalLookup | None = None,
    live: bool | None = None,
) -> tuple[int, BuildState, list[str]]:
    """Run the build child with its output to `log_path`, showing progress meanwhile."""
    live = sys.stdout.isatty() if live is None else live
    state = BuildState(started=time.monotonic())
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # 0600 whatever the umask: the log holds row samples and connection details.
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with (
        os.fdopen(fd, "w", buffering=1) as log,  # line-buffered: `tail -f` keeps up
        subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            errors="replace",
        ) as child,
    ):
        assert child.stdout is not None
        lines = follow(child.stdout, log, state, live, total_lookup)
        rc = child.wait()
    return rc, state, lines

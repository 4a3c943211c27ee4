"""`opsdash up`'s first-build progress, read from Dagster's event lines (no Dagster run)."""

import io
import sys
import time
from pathlib import Path

from opsdash_stack import progress

RUN = "64ad2667-8132-4721-b35c-707e79ef9468"


def ev(step: str | None, kind: str, msg: str, level: str = "DEBUG") -> str:
    step_part = f"{step} - " if step else ""
    return (
        f"2026-12-01 00:24:06 +0000 - dagster - {level} - __ASSET_JOB - {RUN} - 1819 - "
        f"{step_part}{kind} - {msg}\n"
    )


BUILD = [
    "/venv/click/core.py:911: SupersessionWarning: ...\n",
    ev(None, "RUN_START", 'Started execution of run for "__ASSET_JOB".'),
    ev("raw__customers", "STEP_START", 'Started execution of step "raw__customers".'),
    ev("raw__customers", "ASSET_MATERIALIZATION", "Materialized value raw customers."),
    ev("raw__sessions", "STEP_START", 'Started execution of step "raw__sessions".'),
    ev("raw__sessions", "ASSET_MATERIALIZATION", "Materialized value raw sessions."),
    ev("raw__sessions_checks", "STEP_START", "Started execution of step"),
    "12:00:01  72 of 124 START test not_null_x ...... [RUN]"
    + ev("opsdash_dbt_models", "STEP_START", 'Started execution of step "opsdash_dbt_models".'),
    ev("opsdash_dbt_models", "ASSET_MATERIALIZATION", "Materialized value marts customer_health."),
    ev("ml__churn_model", "STEP_START", 'Started execution of step "ml__churn_model".'),
    ev("ml__churn_model", "STEP_FAILURE", 'Execution of step "ml__churn_model" failed.', "ERROR"),
    "dagster._core.errors.DagsterExecutionStepExecutionError: boom\n",
    '  File "ml/churn/training.py", line 12, in train\n',
    ev(None, "RUN_FAILURE", 'Execution of run for "__ASSET_JOB" failed.', "ERROR"),
]


def test_stages_a_person_would_name() -> None:
    assert progress.stage_of("raw__sessions") == "ingest"
    assert progress.stage_of("raw__sessions_checks") == "checks"
    assert progress.stage_of("raw__dimension_checks") == "checks"
    assert progress.stage_of("raw__sessions_trends") == "checks"
    assert progress.stage_of("opsdash_dbt_models_2") == "dbt"
    assert progress.stage_of("demand_forecasts") == "forecasts"
    assert progress.stage_of("ml__churn_model") == "churn training"
    assert progress.stage_of("ml__churn_scores") == "churn scoring"
    assert progress.stage_of("app__recommendations") == "recommendations"


def test_plain_output_is_one_line_per_stage_and_the_log_keeps_everything() -> None:
    state = progress.BuildState(started=time.monotonic())
    log = io.StringIO()
    out = io.StringIO()
    stdout, sys.stdout = sys.stdout, out
    try:
        progress.follow(BUILD, log, state, live=False, total_lookup=lambda run_id: 46)
    finally:
        sys.stdout = stdout
    printed = out.getvalue().splitlines()
    assert printed[0].startswith("[opsdash]   Dagster run 64ad2667 started (46 assets;")
    assert [line.split(":")[0] for line in printed[1:]] == [
        "[opsdash]   ingest",
        "[opsdash]   checks",
        "[opsdash]   dbt",
        "[opsdash]   churn training",
    ]
    assert "(2/46 assets," in printed[2]
    assert log.getvalue() == "".join(BUILD)
    assert state.done == {"raw/customers", "raw/sessions", "marts/customer_health"}
    assert state.failed_steps == ["ml__churn_model"]
    assert state.run_failed


def test_the_bar_names_the_running_step_or_dbts_last_model() -> None:
    state = progress.BuildState(started=0.0)
    assert state.doing() == "Dagster definitions"
    for line in BUILD[1:4]:
        event = progress.parse_line(line)
        assert event is not None
        state.feed(event)
    assert state.doing() == "raw/customers"
    for line in BUILD[7:9]:
        event = progress.parse_line(line)
        assert event is not None
        state.feed(event)
    assert state.doing() == "marts/customer_health"
    assert progress.shorten("x" * 50, 30) == "…" + "x" * 29


def test_failure_excerpt_is_the_failing_steps_traceback() -> None:
    excerpt = "".join(progress.failure_excerpt(BUILD, "ml__churn_model"))
    assert "DagsterExecutionStepExecutionError: boom" in excerpt
    assert "ml/churn/training.py" in excerpt
    assert "SupersessionWarning" not in excerpt  # more than 10 lines before the failure
    assert progress.failure_excerpt(["a\n", "b\n"], None) == ["a\n", "b\n"]


def test_run_build_writes_the_childs_output_to_the_log(tmp_path: Path) -> None:
    lines = "".join(BUILD[:6])
    log_path = tmp_path / "logs" / "first-build.log"
    rc, state, _ = progress.run_build(
        [sys.executable, "-c", f"import sys; sys.stdout.write({lines!r}); sys.exit(3)"],
        env={},
        cwd=tmp_path,
        log_path=log_path,
        live=False,
    )
    assert rc == 3
    assert log_path.read_text() == lines
    assert oct(log_path.stat().st_mode & 0o777) == "0o600"
    assert len(state.done) == 2
    assert state.total is None  # no lookup: the bar has no total rather than a wrong one

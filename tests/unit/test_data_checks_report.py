"""Summaries, Markdown and Data Docs pruning, from hand-made results (notifications of failed
checks come from the alert engine: tests/integration/test_data_checks_suites.py)."""

from datetime import UTC, datetime
from pathlib import Path

from data_checks.docs import prune
from data_checks.report import markdown, summary
from data_checks.result import CheckResult, ExpectationOutcome
from data_checks.suite_types import Bounds, Severity

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BAD_ROW = {
    "id": 102,
    "created_at": "2026-01-01T00:00:00+00:00",
    "tutor_id": 999,
    "customer_id": 3,
    "status": "completed",
}


def result(severity: Severity = Severity.ERROR, *, success: bool = False) -> CheckResult:
    outcomes = (
        ExpectationOutcome(
            "unexpected_rows_expectation",
            "tutor_id references raw.tutors.id",
            "tutor_id",
            success,
            observed=0 if success else 1,
            sample=[] if success else [BAD_ROW],
        ),
        ExpectationOutcome(
            "expect_column_values_to_not_be_null", "id is not null", "id", True, observed={}
        ),
    )
    return CheckResult(
        suite="raw_sessions__valid_batch",
        check="valid_batch",
        asset="raw/sessions",
        severity=severity,
        success=success,
        outcomes=outcomes,
        window=Bounds("_ingested_at", None, T0, rows=40),
        checked_at=T0,
        seconds=0.4,
        run_id="run-1",
        key=("id", "created_at"),
        data_docs="file:///tmp/docs/page.html",
    )


def test_summary_and_markdown() -> None:
    assert summary(result()) == (
        "1 of 2 expectations failed: tutor_id references raw.tutors.id (observed 1)"
    )
    assert summary(result(success=True)).startswith("all 2 expectations passed")
    md = markdown(result())
    lines = md.splitlines()
    assert lines[4] == "| FAILED | tutor_id references raw.tutors.id | 1 |"
    assert "| ok | id is not null | {} |" in lines
    assert '"tutor_id": 999' in md


def test_summary_of_a_skipped_run() -> None:
    skipped = CheckResult(
        suite="s",
        check="valid_batch",
        asset="raw/tutors",
        severity=Severity.ERROR,
        success=True,
        outcomes=(),
        window=Bounds(rows=0),
        checked_at=T0,
        seconds=0.01,
        skipped=("no new rows since the last check",),
    )
    assert summary(skipped).startswith("passed: no new rows since the last check")


def test_prune_keeps_the_newest_runs_and_their_pages(tmp_path: Path) -> None:
    suite = "raw_sessions__valid_batch"
    for i in range(5):
        run_time = f"20260101T00000{i}.000000Z"
        for base, ext in (
            (tmp_path / "gx" / "validations", "json"),
            (tmp_path / "data_docs" / "validations", "html"),
        ):
            d = base / suite / f"run-{i}" / run_time
            d.mkdir(parents=True)
            (d / f"batch.{ext}").write_text("{}")
    assert prune(tmp_path, suite, keep=2) == 3
    left = sorted(p.name for p in (tmp_path / "gx" / "validations" / suite).iterdir())
    assert left == ["run-3", "run-4"]
    pages = sorted(p.name for p in (tmp_path / "data_docs" / "validations" / suite).iterdir())
    assert pages == ["run-3", "run-4"]
    assert prune(tmp_path, "never_ran") == 0

"""Summaries, Markdown, notifications and Data Docs pruning, from hand-made results."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from data_checks.docs import prune
from data_checks.report import brief, markdown, notification, should_notify, summary
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


@pytest.mark.parametrize(
    ("severity", "success", "previous", "expected"),
    [
        (Severity.ERROR, False, None, True),
        (Severity.ERROR, False, False, True),  # every blocked batch is news
        (Severity.WARN, False, None, True),
        (Severity.WARN, False, True, True),
        (Severity.WARN, False, False, False),  # still failing: already told
        (Severity.ERROR, True, False, False),
        (Severity.WARN, True, False, False),
    ],
)
def test_should_notify(
    severity: Severity, success: bool, previous: bool | None, expected: bool
) -> None:
    assert should_notify(result(severity, success=success), previous) is expected


def test_notification_names_the_expectation_the_observed_value_and_bad_rows() -> None:
    msg = notification(result())
    assert msg.subject == "[opsdash] data check failed: raw/sessions valid_batch (error)"
    assert "1 of 2 expectations failed" in msg.body
    assert "Blocking: downstream assets were not built" in msg.body
    assert "- tutor_id references raw.tutors.id\n  observed: 1" in msg.body
    assert (
        'bad row: {"created_at": "2026-01-01T00:00:00+00:00", "id": 102, "tutor_id": 999}'
        in msg.body
    )
    assert "Dagster run: run-1" in msg.body
    assert "file:///tmp/docs/page.html" in msg.body
    slack = str(msg.slack["blocks"])
    assert "tutor_id references raw.tutors.id" in slack
    assert "999" in slack


def test_warning_notification_says_it_did_not_block() -> None:
    assert "Warning only" in notification(result(Severity.WARN)).body


def test_brief_keeps_key_and_column_only_when_present() -> None:
    assert brief(BAD_ROW, ("id",), "tutor_id") == {"id": 102, "tutor_id": 999}
    assert brief({"reason": "x"}, ("id",), None) == {"reason": "x"}


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

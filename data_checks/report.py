"""How a check result reads to people: a one-line summary and a Markdown table for the Dagster
UI. Notifications of failed checks come from the alert engine (`check_failed`/`check_warning`
rules over `quality.check_runs`/`check_results`), not from here."""

from __future__ import annotations

import json
from typing import Any

from data_checks.result import CheckResult, ExpectationOutcome

SAMPLE_ROWS_IN_MESSAGE = 5
MAX_TEXT = 300


def _short(value: Any, limit: int = MAX_TEXT) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def observed_text(o: ExpectationOutcome) -> str:
    if o.error:
        return f"error: {_short(o.error, 200)}"
    return _short(o.observed, 200)


def summary(result: CheckResult) -> str:
    """E.g. '2 of 41 expectations failed: tutor_id references raw.tutors.id (observed 5); ...'."""
    if not result.outcomes:
        why = "; ".join(result.skipped) or "nothing to check"
        return f"passed: {why} ({result.window.describe()})"
    failed = result.failures
    if not failed:
        return f"all {len(result.outcomes)} expectations passed ({result.window.describe()})"
    parts = "; ".join(f"{o.label} (observed {observed_text(o)})" for o in failed[:5])
    more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
    return f"{len(failed)} of {len(result.outcomes)} expectations failed: {parts}{more}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(result: CheckResult) -> str:
    """The expectations as a Markdown table, failures first, with their sample rows below."""
    lines = [
        f"**{result.asset} / {result.check}** ({result.severity}) -- {result.window.describe()}",
        "",
        "| | expectation | observed |",
        "|---|---|---|",
    ]
    for o in sorted(result.outcomes, key=lambda o: o.success):
        mark = "ok" if o.success else "FAILED"
        lines.append(f"| {mark} | {_cell(o.label)} | {_cell(observed_text(o))} |")
    for note in result.skipped:
        lines.append(f"| skipped | {_cell(note)} | |")
    for o in result.failures:
        if o.sample:
            lines += ["", f"Sample rows for *{_cell(o.label)}*:", "```json"]
            lines += [_short(r, 500) for r in o.sample[:SAMPLE_ROWS_IN_MESSAGE]]
            lines.append("```")
    return "\n".join(lines)


def samples(result: CheckResult) -> dict[str, list[dict[str, Any]]]:
    return {o.label: o.sample for o in result.failures if o.sample}

"""How a check result reads to people: one-line summary, a Markdown table for the Dagster UI,
and the email/Slack notification (queued through the same outbox as the alert rules)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg

from data_checks.result import CheckResult, ExpectationOutcome
from data_checks.suite_types import Severity
from opsdash_core.notify import CHANNELS, enqueue, slack_message

SAMPLE_ROWS_IN_MESSAGE = 5
MAX_TEXT = 300


def _short(value: Any, limit: int = MAX_TEXT) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def brief(row: dict[str, Any], key: tuple[str, ...], column: str | None) -> dict[str, Any]:
    """The row's key and the offending column, when the row has them; else the whole row."""
    wanted = [*key, *([column] if column else [])]
    if column and all(c in row for c in wanted):
        return {c: row[c] for c in wanted}
    return row


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


def should_notify(result: CheckResult, previous_success: bool | None) -> bool:
    """Every blocking failure is news (each one stopped a batch); a warning only when the check
    was passing before, so a stale table does not send a message every five minutes."""
    if result.success:
        return False
    return result.severity is Severity.ERROR or previous_success is not False


@dataclass(frozen=True)
class Notification:
    subject: str
    body: str
    slack: dict[str, Any]


def notification(result: CheckResult) -> Notification:
    effect = (
        "Blocking: downstream assets were not built from this batch."
        if result.severity is Severity.ERROR
        else "Warning only: downstream assets were built."
    )
    subject = f"[opsdash] data check failed: {result.asset} {result.check} ({result.severity})"
    body = [
        f"{result.asset} / {result.check}: {len(result.failures)} of {len(result.outcomes)} "
        f"expectations failed.",
        effect,
        f"Window: {result.window.describe()}",
        f"Dagster run: {result.run_id or '-'}",
        "",
    ]
    items = []
    for o in result.failures:
        body.append(f"- {o.label}")
        body.append(f"  observed: {observed_text(o)}")
        rows = [brief(r, result.key, o.column) for r in o.sample[:SAMPLE_ROWS_IN_MESSAGE]]
        body += [f"  bad row: {_short(r)}" for r in rows]
        sample = f" e.g. `{_short(rows[0], 200)}`" if rows else ""
        items.append(f"*{o.label}*: observed {observed_text(o)}{sample}")
    if result.data_docs:
        body += ["", f"Data Docs: {result.data_docs}"]
    footer = f"run {result.run_id or '-'}" + (
        f" · Data Docs: {result.data_docs}" if result.data_docs else ""
    )
    title = f"Data check failed: {result.asset} {result.check}"
    slack = slack_message(title, f"{effect} {result.window.describe()}", items, footer)
    return Notification(subject, "\n".join(body), slack)


def enqueue_failure(conn: psycopg.Connection, result: CheckResult) -> list[int]:
    """Queue the email and the Slack message in the caller's transaction; returns outbox ids."""
    msg = notification(result)
    return [
        enqueue(conn, ch, msg.subject, msg.body, msg.slack if ch == "slack" else None)
        for ch in CHANNELS
    ]

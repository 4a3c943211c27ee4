"""The results history in the warehouse (quality.check_runs / quality.check_results).

One `check_runs` row per suite run, carrying the window it read: the newest `window_end` of a
check is where its next window starts, so a check reads each loaded row once, whether the run
passed or failed (a failed batch is reported once; the next clean batch passes).
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from data_checks.result import CheckResult
from data_checks.suite_types import Suite

RETENTION_DAYS = 90

LAST_WINDOW_END = """
select max(window_end) from quality.check_runs
where asset_key = %s and check_name = %s
"""

INSERT_RUN = """
insert into quality.check_runs
    (check_name, asset_key, suite, severity, success, expectations, failed, rows_checked,
     window_column, window_start, window_end, skipped, run_id, data_docs, seconds, checked_at)
values
    (%(check)s, %(asset)s, %(suite)s, %(severity)s, %(success)s, %(expectations)s, %(failed)s,
     %(rows)s, %(column)s, %(since)s, %(until)s, %(skipped)s, %(run_id)s, %(docs)s,
     %(seconds)s, %(checked_at)s)
returning id
"""

INSERT_RESULT = """
insert into quality.check_results
    (check_run_id, check_name, asset_key, expectation, label, column_name, success, severity,
     observed_value, unexpected_count, element_count, sample, details, error, run_id, checked_at)
values
    (%(run)s, %(check)s, %(asset)s, %(expectation)s, %(label)s, %(column)s, %(success)s,
     %(severity)s, %(observed)s, %(unexpected)s, %(elements)s, %(sample)s, %(details)s,
     %(error)s, %(run_id)s, %(checked_at)s)
"""

PRUNE = "delete from quality.check_runs where checked_at < now() - make_interval(days => %s)"


def last_window_end(conn: psycopg.Connection, suite: Suite) -> datetime | None:
    row = conn.execute(LAST_WINDOW_END, (suite.asset_path, suite.check)).fetchone()
    return row[0] if row else None


def _ts(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


def record(conn: psycopg.Connection, result: CheckResult) -> int:
    """Store one suite run and its expectations in the caller's transaction; returns its id."""
    w = result.window
    row = conn.execute(
        INSERT_RUN,
        {
            "check": result.check,
            "asset": result.asset,
            "suite": result.suite,
            "severity": str(result.severity),
            "success": result.success,
            "expectations": len(result.outcomes),
            "failed": len(result.failures),
            "rows": w.rows,
            "column": w.column,
            "since": _ts(w.since),
            "until": _ts(w.until),
            "skipped": list(result.skipped),
            "run_id": result.run_id,
            "docs": result.data_docs,
            "seconds": round(result.seconds, 3),
            "checked_at": result.checked_at,
        },
    ).fetchone()
    assert row is not None
    run_pk = int(row[0])
    with conn.cursor() as cur:
        cur.executemany(
            INSERT_RESULT,
            [
                {
                    "run": run_pk,
                    "check": result.check,
                    "asset": result.asset,
                    "expectation": o.expectation,
                    "label": o.label,
                    "column": o.column,
                    "success": o.success,
                    "severity": str(result.severity),
                    "observed": Jsonb(o.observed),
                    "unexpected": o.unexpected_count,
                    "elements": o.element_count,
                    "sample": Jsonb(o.sample),
                    "details": Jsonb(o.details),
                    "error": o.error,
                    "run_id": result.run_id,
                    "checked_at": result.checked_at,
                }
                for o in result.outcomes
            ],
        )
    conn.execute(PRUNE, (RETENTION_DAYS,))
    return run_pk

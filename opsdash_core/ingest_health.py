"""Is a raw table's ingestion stuck behind quarantined rows?

The watermark only covers valid rows, so when every new row of a table fails its contract (a
source schema change, a broken writer), the watermark stands still, each cycle re-reads a
growing window, and nothing fails: the loads "succeed" with zero rows. `watermark_stalls`
finds such tables from what the loader already records (`raw.watermarks.updated_at` cannot
tell: every cycle writes it, moved or not):

    a table is stalled when a quarantined row was changed in the source more than `window`
    after the newest loaded row, i.e. for longer than `window` nothing new was loadable.

A bad row among valid ones, or an old bad row met on a first load, is not newer than the
watermark by `window` and never counts. Pick `window` as a few cycles of the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

# Candidates only: quarantined after watermark + window (index on table_name, quarantined_at).
CANDIDATES_SQL = """
select w.table_name, w.watermark, q.updated_at, q.quarantined_at
from raw.watermarks as w
cross join lateral (
    select q.payload ->> 'updated_at' as updated_at, q.quarantined_at
    from raw.quarantine as q
    where q.table_name = w.table_name and q.quarantined_at > w.watermark + %(window)s
    order by q.quarantined_at desc
    limit %(limit)s
) as q
order by w.table_name
"""


@dataclass(frozen=True)
class WatermarkStall:
    """A table whose newest source rows have all been quarantined for longer than the window."""

    table_name: str
    watermark: datetime
    quarantined_rows: int  # newer than watermark + window (at most `limit` looked at)
    last_quarantined_at: datetime


def _source_time(raw: str | None, fallback: datetime) -> datetime:
    """The row's source `updated_at`; when that is what failed its contract, when it was seen."""
    try:
        parsed = datetime.fromisoformat(raw) if raw else fallback
    except ValueError:
        return fallback
    return parsed if parsed.tzinfo else fallback


def watermark_stalls(
    conn: psycopg.Connection, window: timedelta, limit: int = 1000
) -> list[WatermarkStall]:
    """Every raw table stalled for longer than `window` (see the module docstring)."""
    rows = conn.execute(CANDIDATES_SQL, {"window": window, "limit": limit}).fetchall()
    found: dict[str, WatermarkStall] = {}
    for table, watermark, updated_at, quarantined_at in rows:
        if _source_time(updated_at, quarantined_at) <= watermark + window:
            continue
        seen = found.get(table)
        found[table] = WatermarkStall(
            table,
            watermark,
            (seen.quarantined_rows if seen else 0) + 1,
            max(quarantined_at, seen.last_quarantined_at) if seen else quarantined_at,
        )
    return list(found.values())

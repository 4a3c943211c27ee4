"""Split a batch of source rows into valid rows and quarantined rows (pure, no I/O).

Batches are validated whole, by the contract compiled to polars expressions
(`orchestration/lib/ingest/vectorized.py`); `reference_split_rows` is the row-at-a-time pydantic
validator it replaced, kept as the yardstick the vectorized one is tested against.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from orchestration.lib.ingest.tables import TableSpec

if TYPE_CHECKING:  # polars is imported where batches are validated, not with the code location
    import polars as pl


@dataclass(frozen=True)
class Rejected:
    """A source row that broke its contract, kept verbatim with the reason."""

    source_key: str
    reason: str
    payload: dict[str, Any]

    @property
    def payload_json(self) -> str:
        return json.dumps(self.payload, sort_keys=True, default=str)

    @property
    def payload_hash(self) -> str:
        return hashlib.sha256(self.payload_json.encode()).hexdigest()


@dataclass
class Batch:
    """`frame` holds the valid rows in the table's column order and warehouse types."""

    frame: pl.DataFrame
    rejected: list[Rejected] = field(default_factory=list)
    max_updated_at: datetime | None = None

    @property
    def valid(self) -> list[tuple[Any, ...]]:
        return self.frame.rows()


def _max_updated(frame: pl.DataFrame) -> datetime | None:
    if not frame.height:
        return None
    value = frame.get_column("updated_at").max()
    return value if isinstance(value, datetime) else None


def split_rows(spec: TableSpec, rows: Sequence[dict[str, Any]], now: datetime) -> Batch:
    """Validate a batch of rows (Python objects: JSON from an API, psycopg dict rows).

    `max_updated_at` covers valid rows only, so a row dated in the future can never drag the
    watermark past rows that have not been read yet.
    """
    import polars as pl

    from orchestration.lib.ingest import vectorized as vec

    plan = vec.compile_contract(spec.model)
    frame, odd = vec.frame_from_rows(plan, rows)
    verdict = vec.validate_frame(plan, frame, now)
    rejected: list[tuple[int, Rejected]] = []
    for pos, reason in zip(
        verdict.rejected.get_column("__row").to_list(),
        verdict.rejected.get_column("__reason").to_list(),
        strict=True,
    ):
        row = rows[pos]
        reason = vec.render_future(reason, row)
        rejected.append((pos, Rejected(str(row.get("id")), reason, row)))
    accepted: list[tuple[Any, ...]] = []
    for pos in sorted(odd):
        values, why = vec.reference_check(spec.model, rows[pos], now, spec.columns)
        if values is None:
            rejected.append((pos, Rejected(str(rows[pos].get("id")), why or "", rows[pos])))
        else:
            accepted.append(values)
    valid = verdict.valid
    if accepted:
        valid = pl.concat([valid, vec.valid_rows_frame(plan, accepted)])
    rejected.sort(key=lambda pair: pair[0])
    return Batch(valid, [r for _pos, r in rejected], _max_updated(valid))


def split_frame(spec: TableSpec, frame: pl.DataFrame, now: datetime, zone: tzinfo = UTC) -> Batch:
    """Validate a typed frame read from the source database (see `loader.source_fetcher`).

    A rejected row's payload is what the row-at-a-time loader stored: the row as psycopg returns
    it, its timestamps in the source session's time zone `zone`, so a re-run after the switch
    hashes to the same quarantine entry."""
    from orchestration.lib.ingest import vectorized as vec

    plan = vec.compile_contract(spec.model)
    verdict = vec.validate_frame(plan, frame.with_row_index("__row"), now)
    rejected: list[Rejected] = []
    if verdict.rejected.height:
        payloads = vec.python_rows(verdict.rejected, spec.columns, zone)
        reasons = verdict.rejected.get_column("__reason").to_list()
        for payload, reason in zip(payloads, reasons, strict=True):
            text = vec.render_future(reason, payload)
            rejected.append(Rejected(str(payload.get("id")), text, payload))
    return Batch(verdict.valid, rejected, _max_updated(verdict.valid))


def reference_split_rows(spec: TableSpec, rows: Sequence[dict[str, Any]], now: datetime) -> Batch:
    """The row-at-a-time pydantic validator (the engine of record, ~10x slower than the load)."""
    from orchestration.lib.ingest import vectorized as vec

    values: list[tuple[Any, ...]] = []
    rejected: list[Rejected] = []
    newest: datetime | None = None
    for row in rows:
        rec, why = vec.reference_check(spec.model, row, now, spec.columns)
        if rec is None:
            rejected.append(Rejected(str(row.get("id")), why or "", row))
            continue
        values.append(rec)
        upd = rec[spec.columns.index("updated_at")]
        if newest is None or upd > newest:
            newest = upd
    plan = vec.compile_contract(spec.model)
    return Batch(vec.valid_rows_frame(plan, values), rejected, newest)

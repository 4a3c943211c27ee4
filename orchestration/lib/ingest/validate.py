"""Split a batch of source rows into valid rows and quarantined rows (pure, no I/O)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from orchestration.lib.ingest.tables import TableSpec


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
    valid: list[tuple[Any, ...]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    max_updated_at: datetime | None = None


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "row"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def split_rows(spec: TableSpec, rows: list[dict[str, Any]], now: datetime) -> Batch:
    """Validate each row against the table's contract.

    `max_updated_at` covers valid rows only, so a row dated in the future can never drag the
    watermark past rows that have not been read yet.
    """
    batch = Batch()
    ctx = {"now": now}
    model = spec.model
    cols = spec.columns
    for row in rows:
        try:
            rec = model.model_validate(row, context=ctx)
        except ValidationError as exc:
            batch.rejected.append(Rejected(str(row.get("id")), _reason(exc), row))
            continue
        values = tuple(getattr(rec, c) for c in cols)
        batch.valid.append(values)
        upd = rec.updated_at
        if batch.max_updated_at is None or upd > batch.max_updated_at:
            batch.max_updated_at = upd
    return batch

"""The quarantine-rate expectation: how many of one load's rows the ingestion row contracts
rejected (row-level problems never reach raw.*; this check makes a bad load visible)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from data_checks.expectations import fetch
from data_checks.suite_types import ValidationContext

if TYPE_CHECKING:
    import psycopg

    from data_checks.gx_api import GxApi


@dataclass(frozen=True)
class QuarantineRate:
    """Rows newly quarantined by one load <= max(`allowance`, `max_rate` x rows the load read).

    Counted in raw.quarantine by the load's run id: a bad row that the next load reads again
    (the loader re-reads a short lookback) is not quarantined twice, so it cannot fail the next
    cycle too.
    """

    table: str
    max_rate: float = 0.01
    allowance: int = 2
    column: None = None

    @property
    def label(self) -> str:
        return (
            f"rows quarantined by the load <= max({self.allowance}, "
            f"{self.max_rate:.0%} of rows read)"
        )

    def prepare(self, conn: psycopg.Connection, ctx: ValidationContext) -> dict[str, Any]:
        if ctx.facts is None:
            return {"skipped": "no load to check"}
        allowed = max(self.allowance, math.floor(self.max_rate * ctx.facts.rows_read))
        return {"rows_read": ctx.facts.rows_read, "max_value": allowed}

    def build(self, gx: GxApi, ctx: ValidationContext, prepared: dict[str, Any]) -> Any | None:
        if "skipped" in prepared or ctx.facts is None:
            return None
        cond = gx.all_of(
            [
                gx.compare("table_name", "==", self.table),
                gx.compare("run_id", "==", ctx.facts.run_id),
            ]
        )
        return gx.expectation(
            "ExpectTableRowCountToBeBetween",
            min_value=0,
            max_value=prepared["max_value"],
            row_condition=cond,
        )

    def observe(self, observed: Any, prepared: dict[str, Any]) -> Any:
        read = prepared.get("rows_read") or 0
        rate = (observed / read) if read and isinstance(observed, int) else None
        return {"quarantined": observed, "rows_read": read, "rate": rate}

    def sample(
        self, conn: psycopg.Connection, ctx: ValidationContext, result: dict[str, Any], limit: int
    ) -> list[dict[str, Any]]:
        if ctx.facts is None:
            return []
        return fetch(
            conn,
            sql.SQL(
                "select source_key, reason, payload from raw.quarantine"
                " where table_name = %s and run_id = %s order by id limit %s"
            ),
            (self.table, ctx.facts.run_id, limit),
        )

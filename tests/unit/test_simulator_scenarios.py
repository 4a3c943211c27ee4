"""Which scenario effects live mode applies at a given time (pure parsing of truth.scenarios)."""

from __future__ import annotations

from typing import Any

from simulator.model import HOUR
from simulator.scenarios import active_effects


class _Rows:
    """Stands in for the truth.scenarios query: returns fixed (scenario, params, started) rows."""

    def __init__(self, rows: list[tuple[str, dict[str, Any], int]]) -> None:
        self.rows = rows

    def execute(self, _query: str, _params: tuple) -> _Rows:
        return self

    def fetchall(self) -> list[tuple[str, dict[str, Any], int]]:
        return self.rows


def test_quiet_customers_stop_booking_only_while_the_scenario_lasts() -> None:
    now = 1_800_000_000
    conn: Any = _Rows(
        [
            ("customer-quiet", {"customer_ids": [7, 9], "hours": 720}, now - 2 * HOUR),
            ("customer-quiet", {"customer_ids": [11], "hours": 1}, now - 2 * HOUR),
            ("customer-quiet", {"customer_ids": [9, 12], "hours": 24}, now - HOUR),
        ]
    )
    fx = active_effects(conn, now)
    assert fx.quiet == {7, 9, 12}  # 11's scenario ended an hour ago
    assert not fx.demand
    assert not fx.no_show
    assert fx.calls == 1.0

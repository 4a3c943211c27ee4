"""Every suite, in code: three per raw table (raw_suites.py, derived from the row contracts).
Each suite is one Dagster asset check on its asset.

The marts have no suite here: their invariants are dbt tests (dbt_project/models/marts/
_marts.yml, dbt_project/tests/singular/), which dagster-dbt shows as asset checks. A
distribution or drift check on a mart -- what dbt cannot express -- would be added here.
"""

from __future__ import annotations

from data_checks.raw_suites import RAW_SUITES, RAW_TABLES
from data_checks.suite_types import Suite

SUITES: tuple[Suite, ...] = tuple(RAW_SUITES)
BY_NAME: dict[str, Suite] = {s.name: s for s in SUITES}


def suites_for(asset: tuple[str, ...]) -> list[Suite]:
    return [s for s in SUITES if s.asset == asset]


__all__ = ["BY_NAME", "RAW_TABLES", "SUITES", "suites_for"]

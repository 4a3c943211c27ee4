"""Every suite, in code: three per raw table (raw_suites.py), one per mart (mart_suites.py).
Each suite is one Dagster asset check on its asset."""

from __future__ import annotations

from data_checks.mart_suites import MART_SUITES, RISK_TIERS
from data_checks.raw_suites import (
    CUSTOMER_STATUSES,
    RAW_SCHEMAS,
    RAW_SUITES,
    RAW_TABLES,
    REASON_CODES,
    REQUEST_STATUSES,
    SESSION_STATUSES,
    TUTOR_STATUSES,
)
from data_checks.spec import Suite

SUITES: tuple[Suite, ...] = (*RAW_SUITES, *MART_SUITES)
BY_NAME: dict[str, Suite] = {s.name: s for s in SUITES}


def suites_for(asset: tuple[str, ...]) -> list[Suite]:
    return [s for s in SUITES if s.asset == asset]


__all__ = [
    "BY_NAME",
    "CUSTOMER_STATUSES",
    "RAW_SCHEMAS",
    "RAW_TABLES",
    "REASON_CODES",
    "REQUEST_STATUSES",
    "RISK_TIERS",
    "SESSION_STATUSES",
    "SUITES",
    "TUTOR_STATUSES",
    "suites_for",
]

"""Each domain package exposes `defs: dg.Definitions`; this module lists the domains."""

from __future__ import annotations

import importlib

import dagster as dg

DOMAINS = (
    "ingestion",
    "quality",
    "transform",
    "churn",
    "alerting",
    "forecasting",
    "recommendations",
    "build",
)


def all_domain_defs() -> list[dg.Definitions]:
    return [importlib.import_module(f"orchestration.defs.{d}").defs for d in DOMAINS]

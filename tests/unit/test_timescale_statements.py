"""The exact statements opsdash's Python sends to TimescaleDB: a server without the extension
cannot run them, so their text and arguments are pinned here (the dbt side's DDL is pinned in
tests/integration/test_timescale_dbt.py)."""

from __future__ import annotations

from datetime import timedelta

from opsdash_core import rollups, timescale
from opsdash_core.timescale import RefreshWindow, Statement


def test_create_extension() -> None:
    assert timescale.create_extension() == Statement("create extension if not exists timescaledb")


def test_create_hypertable_migrates_existing_rows() -> None:
    assert timescale.create_hypertable("raw.sessions", "created_at") == Statement(
        "select create_hypertable(%(table)s::regclass, %(time_column)s::name,"
        " if_not_exists => true, migrate_data => true)",
        {"table": "raw.sessions", "time_column": "created_at"},
    )


def test_continuous_aggregates_are_listed_with_single_percent_signs() -> None:
    """Sent without parameters: psycopg passes the text as is, so `%%I` would reach the server
    doubled and return the literal '%I.%I' (issue 8, finding 1)."""
    statement = timescale.list_continuous_aggregates()
    assert statement == Statement(
        "select format('%I.%I', view_schema, view_name)"
        " from timescaledb_information.continuous_aggregates"
        " where view_schema = 'marts' order by view_name"
    )
    assert not statement.params


def test_refresh_of_the_recent_window() -> None:
    window = RefreshWindow(back=timedelta(days=3), ahead=timedelta(days=8))
    assert timescale.refresh_continuous_aggregate("marts.supply_demand_daily", window) == Statement(
        "call refresh_continuous_aggregate(%(view)s::regclass,"
        " now() - %(back)s::interval, now() + %(ahead)s::interval)",
        {
            "view": "marts.supply_demand_daily",
            "back": timedelta(days=3),
            "ahead": timedelta(days=8),
        },
    )


def test_refresh_of_the_whole_history() -> None:
    assert timescale.refresh_continuous_aggregate("marts.supply_demand_daily", None) == Statement(
        "call refresh_continuous_aggregate(%(view)s::regclass, null, null)",
        {"view": "marts.supply_demand_daily"},
    )


def test_history_mark_matches_the_rollup_materialization() -> None:
    """The mark dbt writes into a new aggregate's comment is the one the refresh looks for."""
    from opsdash_core.settings import PROJECT_ROOT

    macro = (PROJECT_ROOT / "dbt_project/macros/materializations/rollup.sql").read_text()
    assert f'"{rollups.HISTORY_PENDING}"' in macro

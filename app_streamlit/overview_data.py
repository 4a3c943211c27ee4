"""What the Overview page reads: the daily KPI mart for the metric cards and their sparklines,
live alert counts by severity, the supply gaps of the next 24 hours and the open
recommendations. Constant SQL with bound parameters through `data.cached_query`; every relation
may be missing on a young warehouse (the loaders return None then, and the page says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app_streamlit.data import Row, cached_query

SPARK_DAYS = 14
SEVERITIES = ("critical", "warning", "info")

KPIS_SQL = """
select kpi_date, active_customers, sessions_scheduled, sessions_completed, completion_rate,
       avg_rating, at_risk_customers, critical_customers, open_alerts,
       active_customers_change_1d, sessions_completed_change_1d, completion_rate_change_1d,
       avg_rating_change_1d, at_risk_customers_change_1d, open_alerts_change_1d, computed_at
from marts.ops_kpis_daily
where kpi_date > current_date - %(days)s::int
order by kpi_date
"""

OPEN_BY_SEVERITY_SQL = """
select severity, count(*) as alerts
from app.alerts
where status = 'open'
group by severity
"""

CRITICAL_OPEN_SQL = """
select id, title, rule, entity_type, entity_id, created_at
from app.alerts
where status = 'open' and severity = 'critical'
order by created_at desc, id desc
limit %(limit)s
"""

TOP_GAPS_SQL = """
select subject_id, coalesce(subject_name, subject_id::text) as subject_name, hour_at,
       forecast_requested_sessions, available_tutor_hours, forecast_supply_gap
from marts.demand_supply_gaps_hourly
where hour_at >= date_trunc('hour', now())
  and hour_at < date_trunc('hour', now()) + interval '24 hours'
  and forecast_supply_gap > 0
order by forecast_supply_gap desc, hour_at, subject_id
limit %(limit)s
"""

TOP_RECOMMENDATIONS_SQL = """
select id, entity_type, entity_id, rec_type, reason, action, priority, created_at, due_at
from app.recommendations
where status = 'active'
order by priority desc, created_at desc, id desc
limit %(limit)s
"""


@dataclass(frozen=True)
class Card:
    """One metric card: today's value, its change from yesterday and the daily series."""

    label: str
    value: float | None
    change: float | None
    series: list[float]
    help: str


# (label, value column, change column or None, help)
CARD_SPECS: tuple[tuple[str, str, str | None, str], ...] = (
    ("Active customers", "active_customers", "active_customers_change_1d", "Signed up and active"),
    (
        "Sessions today",
        "sessions_scheduled",
        None,
        "Sessions scheduled for today (UTC) so far; change against all of yesterday",
    ),
    (
        "Completion rate",
        "completion_rate",
        "completion_rate_change_1d",
        "Completed sessions as % of resolved ones; change in percentage points",
    ),
    (
        "Average rating",
        "avg_rating",
        "avg_rating_change_1d",
        "Mean session rating (1-5) of the day",
    ),
    (
        "At-risk customers",
        "at_risk_customers",
        "at_risk_customers_change_1d",
        "Risk tier high or critical",
    ),
)


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def kpi_rows(days: int = SPARK_DAYS) -> list[Row] | None:
    """The last `days` rows of marts.ops_kpis_daily, oldest first; None without the mart."""
    return cached_query("overview_kpis", KPIS_SQL, {"days": days}, domain="metrics")


def cards(rows: list[Row]) -> list[Card]:
    """Metric cards from the KPI rows (the last row is today). Pure, for unit tests."""
    out = []
    for label, column, change_column, help_text in CARD_SPECS:
        series = [float(r[column]) for r in rows if r.get(column) is not None]
        last = rows[-1] if rows else {}
        value = _num(last.get(column))
        if change_column is not None:
            change = _num(last.get(change_column))
        else:
            before = rows[-2].get(column) if len(rows) > 1 else None
            change = None if value is None or before is None else value - float(before)
        out.append(Card(label, value, change, series, help_text))
    return out


def open_alerts_by_severity() -> dict[str, int] | None:
    """Open (unacknowledged) alerts per severity, every severity present; None without alerts."""
    rows = cached_query("overview_open_by_severity", OPEN_BY_SEVERITY_SQL, domain="alerts")
    if rows is None:
        return None
    counts = {s: 0 for s in SEVERITIES}
    for row in rows:
        counts[str(row["severity"])] = int(row["alerts"])
    return counts


def open_critical_alerts(limit: int = 5) -> list[Row]:
    return (
        cached_query("overview_critical", CRITICAL_OPEN_SQL, {"limit": limit}, domain="alerts")
        or []
    )


def top_gaps(limit: int = 5) -> list[Row] | None:
    """The largest expected shortfalls of tutor-hours in the next 24 h; None without the mart."""
    return cached_query("overview_gaps", TOP_GAPS_SQL, {"limit": limit}, domain="forecasts")


def top_recommendations(limit: int = 5) -> list[Row] | None:
    """Active recommendations, most valuable first; None while the table does not exist."""
    return cached_query(
        "overview_recommendations",
        TOP_RECOMMENDATIONS_SQL,
        {"limit": limit},
        domain="recommendations",
    )

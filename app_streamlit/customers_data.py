"""What the Customers page reads: constant SQL with bound parameters, through `data.cached_query`.

The list reads marts.customer_health and takes names and e-mails from marts.customer_directory
(joined by primary key for the shown page). A name/e-mail search is a semi-join on the directory,
whose trigram indexes serve `ilike '%text%'` at 1,000,000 customers. The detail reads one
customer's rows: its health row, its score history, its latest churn score (whatever columns
ml.churn_scores has), its last sessions (intermediate.int_sessions_deduplicated, the pipeline's
deduplicated, indexed session table: by customer and schedule, newest first), its last support
calls (staging.stg_support__inbound_calls, the newest version of each call; served by the
customer/called_at index underneath), and its alerts and recommendations (app.*, through the
alerts and recommendations readers). No query reads raw.*.

Everything read from the marts is versioned under the `customers` domain, so a
`customer_health_updated` event on the stream refreshes it at once (not only at the TTL).
"""

from __future__ import annotations

from app_streamlit import alerts_data, recommendations_data
from app_streamlit.data import Row, cached_query
from app_streamlit.view_params import PAGE_SIZE, CustomerFilters

DOMAIN = "customers"

COMPONENTS = (
    "recency",
    "frequency",
    "rating",
    "support_calls",
    "goal_progress",
    "tutor_switching",
    "tenure",
)

_FILTERED = """
from marts.customer_health as h
left join marts.customer_directory as c on c.customer_id = h.customer_id
where (%(tier)s::text is null or h.risk_tier = %(tier)s)
  and (%(channel)s::text is null or h.acquisition_channel = %(channel)s)
  and (%(segment)s::text is null or h.scoring_profile = %(segment)s)
  and (%(trend)s::text is null
       or (%(trend)s = 'rising' and h.risk_score_change_7d > 0)
       or (%(trend)s = 'falling' and h.risk_score_change_7d < 0)
       or (%(trend)s = 'steady' and coalesce(h.risk_score_change_7d, 0) = 0))
  and (%(search)s::text is null
       or h.customer_id in (
           select d.customer_id
           from marts.customer_directory as d
           where d.full_name ilike %(pattern)s or d.email ilike %(pattern)s
           union all
           select %(search_id)s::bigint))
"""

# ORDER BY cannot be a bound parameter: one constant query per allowed sort key.
_ORDER = {
    "risk_desc": "h.risk_score desc, h.customer_id",
    "risk_asc": "h.risk_score asc, h.customer_id",
    "change_desc": "h.risk_score_change_7d desc nulls last, h.customer_id",
    "last_session": "h.days_since_last_session desc nulls last, h.customer_id",
    "customer_id": "h.customer_id",
}
_PAGE = """
select h.customer_id, c.full_name, c.email, h.risk_tier, h.risk_score, h.risk_score_change_7d,
       h.top_risk_component, h.days_since_last_session, h.sessions_30d, h.inbound_calls_30d,
       h.acquisition_channel, h.scoring_profile, h.tenure_days
{filtered}
order by {order}
limit %(limit)s offset %(offset)s
"""
PAGE_SQL = {key: _PAGE.format(filtered=_FILTERED, order=order) for key, order in _ORDER.items()}
COUNT_SQL = "select count(*) as customers\n" + _FILTERED

# A loose index scan: one index probe per channel (0.5 ms at a million customers) where
# `select distinct` reads every row (110 ms), on every rerun of the page while Redis is down.
# The index is the model's post-hook (dbt_project/models/marts/customer_health.sql).
CHANNELS_SQL = """
with recursive channel as (
    select min(acquisition_channel) as name from marts.customer_health
    union all
    select (
        select min(h.acquisition_channel) from marts.customer_health as h
        where h.acquisition_channel > channel.name
    )
    from channel
    where channel.name is not null
)
select name as acquisition_channel from channel where name is not null order by 1
"""

DETAIL_SQL = """
select h.*, c.full_name, c.email
from marts.customer_health as h
left join marts.customer_directory as c on c.customer_id = h.customer_id
where h.customer_id = %(customer_id)s
"""

HISTORY_SQL = """
select snapshot_date, risk_score, risk_tier
from marts.customer_health_history
where customer_id = %(customer_id)s
  and snapshot_date >= current_date - %(days)s::int
order by snapshot_date
"""

LATEST_CHURN_SQL = """
select *
from ml.churn_scores
where customer_id = %(customer_id)s
order by scored_at desc
limit 1
"""

RECENT_SESSIONS_SQL = """
select s.session_id, s.scheduled_at, s.session_status as status, s.rating, s.tutor_id,
       s.subject_id, s.duration_minutes
from intermediate.int_sessions_deduplicated as s
where s.customer_id = %(customer_id)s
order by s.scheduled_at desc
limit %(limit)s
"""

RECENT_CALLS_SQL = """
select c.call_id, c.called_at, c.reason_code, c.channel, c.duration_seconds, c.is_resolved
from staging.stg_support__inbound_calls as c
where c.customer_id = %(customer_id)s
order by c.called_at desc, c.call_id desc
limit %(limit)s
"""


def filter_params(filters: CustomerFilters) -> dict[str, object]:
    """Bound parameters of the list queries (empty filters are null = any)."""
    search = filters.q or None
    return {
        "tier": filters.tier or None,
        "channel": filters.channel or None,
        "segment": filters.segment or None,
        "trend": filters.trend or None,
        "search": search,
        "search_id": int(search) if search and search.isdigit() and len(search) < 19 else None,
        "pattern": f"%{_escape_like(search)}%" if search else None,
    }


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def customer_page(filters: CustomerFilters) -> tuple[list[Row], int] | None:
    """One page of the filtered, sorted list and the number of matches; None without the mart."""
    params = filter_params(filters)
    counted = cached_query("customers_count", COUNT_SQL, params, domain=DOMAIN)
    if counted is None:
        return None
    page_params = {**params, "limit": PAGE_SIZE, "offset": (filters.page - 1) * PAGE_SIZE}
    rows = cached_query("customers_page", PAGE_SQL[filters.sort], page_params, domain=DOMAIN) or []
    return rows, int(counted[0]["customers"])


def channels() -> list[str]:
    rows = cached_query("customer_channels", CHANNELS_SQL, domain=DOMAIN) or []
    return [str(r["acquisition_channel"]) for r in rows]


def customer_detail(customer_id: int) -> Row | None:
    rows = cached_query("customer_detail", DETAIL_SQL, {"customer_id": customer_id}, domain=DOMAIN)
    return rows[0] if rows else None


def score_history(customer_id: int, days: int = 90) -> list[Row]:
    """Daily score snapshots; empty while the history mart does not exist."""
    params = {"customer_id": customer_id, "days": days}
    return cached_query("customer_history", HISTORY_SQL, params, domain=DOMAIN) or []


def latest_churn(customer_id: int) -> Row | None:
    rows = cached_query(
        "customer_churn", LATEST_CHURN_SQL, {"customer_id": customer_id}, domain=DOMAIN
    )
    return rows[0] if rows else None


def recent_sessions(customer_id: int, limit: int = 10) -> list[Row]:
    params = {"customer_id": customer_id, "limit": limit}
    return cached_query("customer_sessions", RECENT_SESSIONS_SQL, params, domain=DOMAIN) or []


def recent_support_calls(customer_id: int, limit: int = 10) -> list[Row] | None:
    """The customer's newest support calls; None while the staging view does not exist."""
    params = {"customer_id": customer_id, "limit": limit}
    return cached_query("customer_calls", RECENT_CALLS_SQL, params, domain=DOMAIN)


def customer_alerts(customer_id: int, limit: int = 10) -> list[Row]:
    """Alerts raised about the customer, live ones first (every status)."""
    return alerts_data.list_alerts(
        status=None, entity_type="customer", entity_id=customer_id, limit=limit
    )


def customer_recommendations(customer_id: int, limit: int = 10) -> list[Row]:
    """Recommendations for the customer, highest priority first (every status)."""
    return recommendations_data.list_recommendations(
        status=None, entity_type="customer", entity_id=customer_id, limit=limit
    )


def contributions(health: Row) -> list[Row]:
    """Each component's risk, weight and points from the health row (components with data)."""
    out = []
    for name in COMPONENTS:
        points = health.get(f"{name}_points")
        if points is None:
            continue
        out.append(
            {
                "component": name.replace("_", " "),
                "risk": health.get(f"{name}_risk"),
                "weight": health.get(f"{name}_weight"),
                "points": float(points),
            }
        )
    return out

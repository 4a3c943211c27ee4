"""What the Recommendations page reads, through the versioned query cache (domain
"recommendations"): the SQL of `alerting.recommendation_actions`. Actions still go through that
module (role check, event and audit rows, live event); the page then calls
`data.invalidate("recommendations")`, and every `recommendation_*` event on the stream moves the
version for every process.
"""

from __future__ import annotations

from alerting import recommendation_actions as recs
from app_streamlit.data import Row, cached_query

DOMAIN = "recommendations"

GET_SQL = "select * from app.recommendations where id = %(id)s"

HISTORY_SQL = """
select id, recommendation_id, from_status, to_status, actor, actor_type, comment, at
from app.recommendation_events
where recommendation_id = %(id)s
order by at, id
"""


def list_recommendations(
    *,
    status: str | None = "active",
    entity_type: str | None = None,
    entity_id: int | None = None,
    limit: int = 100,
) -> list[Row]:
    """Recommendations, highest priority first (`status=None` for every status)."""
    if status is not None and status not in recs.STATUSES:
        raise recs.RecommendationError(
            f"Status must be one of {', '.join(recs.STATUSES)}; got {status!r}."
        )
    params = {
        "status": status,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "limit": max(0, limit),
    }
    return cached_query("recs_list", recs.LIST_SQL, params, domain=DOMAIN) or []


def get_recommendation(rec_id: int) -> Row | None:
    rows = cached_query("rec", GET_SQL, {"id": rec_id}, domain=DOMAIN)
    return rows[0] if rows else None


def history(rec_id: int) -> list[Row]:
    """Every status change of one recommendation, oldest first."""
    return cached_query("rec_history", HISTORY_SQL, {"id": rec_id}, domain=DOMAIN) or []


def effectiveness() -> list[Row]:
    """marts.recommendation_effectiveness, newest week first; empty until dbt built it."""
    return cached_query("recs_effectiveness", recs.EFFECTIVENESS_SQL) or []

"""What the Tutors page reads: marts.tutor_performance (one row per active tutor, 30-day window,
with the mart's own judgement) and marts.tutor_performance_daily for one tutor's trends.
Names come from marts.tutor_directory, joined by primary key (no query reads raw.*).
"""

from __future__ import annotations

from app_streamlit.data import Row, cached_query
from app_streamlit.view_params import PAGE_SIZE, TutorFilters

_FILTERED = """
from marts.tutor_performance as p
left join marts.tutor_directory as t on t.tutor_id = p.tutor_id
where (not %(coaching)s or p.is_underperforming)
  and (%(search)s::text is null
       or p.tutor_id = %(search_id)s
       or t.full_name ilike %(pattern)s
       or t.email ilike %(pattern)s)
"""
_ORDER = {
    "score_asc": "p.success_score asc nulls last, p.tutor_id",
    "score_desc": "p.success_score desc nulls last, p.tutor_id",
    "no_shows": "p.tutor_no_show_rate_30d desc nulls last, p.tutor_id",
    "volume": "p.sessions_completed_30d desc, p.tutor_id",
    "tutor_id": "p.tutor_id",
}
_PAGE = """
select p.tutor_id, t.full_name, p.success_score, p.is_underperforming, p.underperforming_reason,
       p.sessions_scheduled_30d, p.sessions_completed_30d, p.tutor_no_shows_30d,
       p.tutor_no_show_rate_30d, p.avg_rating_30d, p.first_session_success_rate_30d,
       p.rebooking_rate_30d, p.utilization_30d, p.is_judged
{filtered}
order by {order}
limit %(limit)s offset %(offset)s
"""
PAGE_SQL = {key: _PAGE.format(filtered=_FILTERED, order=order) for key, order in _ORDER.items()}
COUNT_SQL = "select count(*) as tutors\n" + _FILTERED

COACHING_SQL = """
select p.tutor_id, t.full_name, p.success_score, p.underperforming_reason,
       p.sessions_completed_30d, p.tutor_no_show_rate_30d, p.first_session_success_rate_30d
from marts.tutor_performance as p
left join marts.tutor_directory as t on t.tutor_id = p.tutor_id
where p.is_underperforming
order by p.success_score asc nulls last, p.tutor_id
limit %(limit)s
"""

DETAIL_SQL = """
select p.*, t.full_name, t.email
from marts.tutor_performance as p
left join marts.tutor_directory as t on t.tutor_id = p.tutor_id
where p.tutor_id = %(tutor_id)s
"""

DAILY_SQL = """
select performance_date, sessions_scheduled, sessions_completed, tutor_no_shows,
       success_score, avg_rating_30d, tutor_no_show_rate_30d, first_session_success_rate_30d,
       rebooking_rate_30d, is_underperforming
from marts.tutor_performance_daily
where tutor_id = %(tutor_id)s
  and performance_date >= current_date - %(days)s::int
order by performance_date
"""


def _filter_params(filters: TutorFilters) -> dict[str, object]:
    search = filters.q or None
    pattern = None
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
    return {
        "coaching": filters.coaching,
        "search": search,
        "search_id": int(search) if search and search.isdigit() and len(search) < 19 else None,
        "pattern": pattern,
    }


def tutor_page(filters: TutorFilters) -> tuple[list[Row], int] | None:
    """One page of the tutor table and the number of matches; None without the mart."""
    params = _filter_params(filters)
    counted = cached_query("tutors_count", COUNT_SQL, params)
    if counted is None:
        return None
    page_params = {**params, "limit": PAGE_SIZE, "offset": (filters.page - 1) * PAGE_SIZE}
    rows = cached_query("tutors_page", PAGE_SQL[filters.sort], page_params) or []
    return rows, int(counted[0]["tutors"])


def coaching_list(limit: int = 50) -> list[Row]:
    """Tutors the mart flags as underperforming, weakest first, with its reasons."""
    return cached_query("tutors_coaching", COACHING_SQL, {"limit": limit}) or []


def tutor_detail(tutor_id: int) -> Row | None:
    rows = cached_query("tutor_detail", DETAIL_SQL, {"tutor_id": tutor_id})
    return rows[0] if rows else None


def tutor_daily(tutor_id: int, days: int = 90) -> list[Row]:
    params = {"tutor_id": tutor_id, "days": days}
    return cached_query("tutor_daily", DAILY_SQL, params) or []

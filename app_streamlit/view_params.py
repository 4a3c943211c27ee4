"""Filters of the Customers and Tutors pages as URL query parameters, so a view can be shared.

Pure code (no Streamlit): `st.query_params` is passed in as a plain mapping. Unknown or
malformed values fall back to the default instead of raising, because a URL is user input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

TIERS = ("low", "medium", "high", "critical")
TRENDS = ("rising", "falling", "steady")
# marts.customer_health.scoring_profile: `new` (first new_customer_days days, scored with the
# new-customer weights) or `established`.
SEGMENTS = ("new", "established")
CUSTOMER_SORTS = ("risk_desc", "risk_asc", "change_desc", "last_session", "customer_id")
TUTOR_SORTS = ("score_asc", "score_desc", "no_shows", "volume", "tutor_id")
PAGE_SIZE = 25
MAX_SEARCH = 100


@dataclass(frozen=True)
class CustomerFilters:
    """What the customer table shows; every field is one query parameter (empty = any)."""

    q: str = ""
    tier: str = ""
    trend: str = ""
    channel: str = ""
    segment: str = ""
    sort: str = "risk_desc"
    page: int = 1


@dataclass(frozen=True)
class TutorFilters:
    """What the tutor table shows."""

    q: str = ""
    coaching: bool = False
    sort: str = "score_asc"
    page: int = 1


def _first(params: Mapping[str, object], name: str) -> str:
    value = params.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).strip() if value is not None else ""


def parse_id(params: Mapping[str, object], name: str) -> int | None:
    """A positive integer id (`?customer_id=6`), else None."""
    text = _first(params, name)
    return int(text) if text.isdigit() and 0 < int(text) < 2**63 else None


def _page(params: Mapping[str, object]) -> int:
    text = _first(params, "page")
    return max(1, min(int(text), 10**6)) if text.isdigit() else 1


def _choice(params: Mapping[str, object], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = _first(params, name)
    return value if value in allowed else default


def parse_customer_filters(params: Mapping[str, object]) -> CustomerFilters:
    """Filters from the URL; the channel is free text (bound as a parameter, never formatted)."""
    return CustomerFilters(
        q=_first(params, "q")[:MAX_SEARCH],
        tier=_choice(params, "tier", TIERS, ""),
        trend=_choice(params, "trend", TRENDS, ""),
        channel=_first(params, "channel")[:MAX_SEARCH],
        segment=_choice(params, "segment", SEGMENTS, ""),
        sort=_choice(params, "sort", CUSTOMER_SORTS, "risk_desc"),
        page=_page(params),
    )


def parse_tutor_filters(params: Mapping[str, object]) -> TutorFilters:
    return TutorFilters(
        q=_first(params, "q")[:MAX_SEARCH],
        coaching=_first(params, "coaching") in {"1", "true", "yes"},
        sort=_choice(params, "sort", TUTOR_SORTS, "score_asc"),
        page=_page(params),
    )


def to_query_params(filters: CustomerFilters | TutorFilters) -> dict[str, str]:
    """Only the non-default values, so a plain view keeps a plain URL."""
    default = type(filters)()
    out: dict[str, str] = {}
    for name, value in asdict(filters).items():
        if value == getattr(default, name):
            continue
        out[name] = ("1" if value else "") if isinstance(value, bool) else str(value)
    return out


def page_count(total: int, page_size: int = PAGE_SIZE) -> int:
    """Pages needed for `total` rows (at least one, so an empty table still has page 1)."""
    return max(1, -(-total // page_size))

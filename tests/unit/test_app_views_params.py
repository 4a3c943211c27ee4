"""URL query parameters of the Customers/Tutors pages, the SQL they bind, and literal text."""

from __future__ import annotations

import pytest

from app_streamlit import customers_data, tutors_data
from app_streamlit.view_params import (
    CustomerFilters,
    TutorFilters,
    page_count,
    parse_customer_filters,
    parse_id,
    parse_tutor_filters,
    to_query_params,
)
from app_streamlit.view_text import markdown_text


def test_customer_filters_round_trip_through_the_url() -> None:
    filters = CustomerFilters(
        q="ada", tier="critical", trend="rising", channel="ads", segment="new", page=3
    )
    params = to_query_params(filters)
    assert params == {
        "q": "ada",
        "tier": "critical",
        "trend": "rising",
        "channel": "ads",
        "segment": "new",
        "page": "3",
    }
    assert parse_customer_filters(params) == filters


def test_default_filters_keep_a_plain_url() -> None:
    assert to_query_params(CustomerFilters()) == {}
    assert to_query_params(TutorFilters()) == {}
    assert parse_customer_filters({}) == CustomerFilters()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"tier": "urgent"}, CustomerFilters()),  # unknown tier: any
        ({"sort": "risk_score; drop table x"}, CustomerFilters()),
        ({"page": "-2"}, CustomerFilters()),
        ({"page": "abc"}, CustomerFilters()),
        ({"page": "0"}, CustomerFilters(page=1)),
        ({"trend": ["falling", "rising"]}, CustomerFilters(trend="falling")),
        ({"segment": "vip"}, CustomerFilters()),  # unknown segment: any
        ({"q": "  x" * 80}, CustomerFilters(q=("x  " * 80).strip()[:100])),
    ],
)
def test_bad_url_values_fall_back_to_defaults(
    params: dict[str, object], expected: CustomerFilters
) -> None:
    parsed = parse_customer_filters(params)
    assert parsed.tier == expected.tier
    assert parsed.sort == expected.sort
    assert parsed.page == expected.page
    assert parsed.trend == expected.trend
    assert parsed.segment == expected.segment
    assert len(parsed.q) <= 100


def test_tutor_filters() -> None:
    assert parse_tutor_filters({"coaching": "1", "sort": "no_shows"}) == TutorFilters(
        coaching=True, sort="no_shows"
    )
    assert to_query_params(TutorFilters(coaching=True)) == {"coaching": "1"}
    assert parse_tutor_filters({"coaching": "no"}).coaching is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [("6", 6), (" 42 ", 42), ("0", None), ("-1", None), ("6x", None), ("9" * 30, None), ("", None)],
)
def test_parse_id(value: str, expected: int | None) -> None:
    assert parse_id({"customer_id": value}, "customer_id") == expected


def test_page_count() -> None:
    assert page_count(0) == 1
    assert page_count(25) == 1
    assert page_count(26) == 2


def test_search_is_bound_not_formatted() -> None:
    params = customers_data.filter_params(CustomerFilters(q="50%_o'brien"))
    assert params["pattern"] == "%50\\%\\_o'brien%"
    assert params["search_id"] is None
    assert customers_data.filter_params(CustomerFilters(q="17"))["search_id"] == 17
    for sql in [*customers_data.PAGE_SQL.values(), *tutors_data.PAGE_SQL.values()]:
        assert "o'brien" not in sql
        assert "%(pattern)s" in sql


def test_every_sort_key_has_its_query() -> None:
    from app_streamlit.view_params import CUSTOMER_SORTS, TUTOR_SORTS

    assert set(customers_data.PAGE_SQL) == set(CUSTOMER_SORTS)
    assert set(tutors_data.PAGE_SQL) == set(TUTOR_SORTS)


def test_markdown_text_escapes_markup() -> None:
    assert markdown_text("<script>alert(1)</script>") == "\\<script\\>alert\\(1\\)\\<\\/script\\>"
    assert markdown_text("*Bob* [x](y)\nnext") == "\\*Bob\\* \\[x\\]\\(y\\) next"
    assert markdown_text("Zoë Smith") == "Zoë Smith"


def test_contributions_skip_components_without_data() -> None:
    health = {
        "recency_points": 30.0,
        "recency_risk": 1.0,
        "recency_weight": 30.0,
        "tenure_points": None,
    }
    assert customers_data.contributions(health) == [
        {"component": "recency", "risk": 1.0, "weight": 30.0, "points": 30.0}
    ]


def test_risk_factors_read_as_words_never_as_numbers() -> None:
    """Scores written before factors carried words still show a readable name and whether it
    raises or lowers the risk: no feature identifiers or SHAP log-odds reach the page."""
    from app_streamlit.views.customers import factor_rows

    old = [
        {"feature": "days_since_last_session", "shap": 0.4213},
        {"feature": "tenure_days", "shap": -0.1},
        {"feature": "rating_avg_90d", "label": "Average session rating (90 days)", "shap": 0.2},
        {"feature": "ignored_fourth", "shap": 0.01},
    ]
    assert factor_rows(old) == [
        {"factor": "Days since last session", "effect": "raises the risk", "intervention": "—"},
        {"factor": "Tenure days", "effect": "lowers the risk", "intervention": ""},
        {
            "factor": "Average session rating (90 days)",
            "effect": "raises the risk",
            "intervention": "—",
        },
    ]
    assert factor_rows(["plain text"]) == [
        {"factor": "plain text", "effect": "", "intervention": ""}
    ]

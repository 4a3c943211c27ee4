"""The new pages' queries against marts built by dbt from a simulated marketplace.

The other page tests create the marts by hand; this one catches a query naming a column the dbt
models do not have (or no longer have). It reuses the module-scoped `marts` build of
test_dbt_marts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from app_streamlit import (
    customers_data,
    data,
    forecasts_data,
    models_data,
    overview_data,
    session,
    tutors_data,
)
from app_streamlit.view_params import CustomerFilters, TutorFilters
from opsdash_core import accounts
from opsdash_core.db import close_pools, fetch_all
from opsdash_core.settings import PROJECT_ROOT, reset_settings
from tests.integration.test_dbt_marts import Marts, marts  # noqa: F401 - marts is a fixture

pytestmark = pytest.mark.integration

TIMEOUT = 60


@pytest.fixture
def built(marts: Marts, monkeypatch: pytest.MonkeyPatch) -> Iterator[Marts]:  # noqa: F811
    monkeypatch.setenv("WAREHOUSE_URL", marts.warehouse_url)
    reset_settings()
    data.clear_cache()
    user = accounts.User(id=2, username="val", role="viewer")
    monkeypatch.setattr(session, "current_user", lambda: user)
    yield marts
    close_pools()
    data.clear_cache()
    monkeypatch.undo()
    reset_settings()


def test_every_query_runs_on_the_dbt_marts(built: Marts) -> None:
    url = built.warehouse_url
    any_customer = fetch_all(url, "select customer_id from marts.customer_health limit 1")
    any_tutor = fetch_all(url, "select tutor_id from marts.tutor_performance limit 1")
    assert any_customer
    assert any_tutor
    customer_id = int(any_customer[0]["customer_id"])
    tutor_id = int(any_tutor[0]["tutor_id"])
    filters = customers_data.filter_params(
        CustomerFilters(q="a", tier="high", trend="rising", segment="established")
    )
    for sql in customers_data.PAGE_SQL.values():
        fetch_all(url, sql, {**filters, "limit": 5, "offset": 0})
    fetch_all(url, customers_data.COUNT_SQL, filters)
    page = customers_data.customer_page(CustomerFilters())
    assert page is not None
    assert page[1] > 0
    assert page[0][0]["full_name"]
    health = customers_data.customer_detail(customer_id)
    assert health is not None
    assert customers_data.contributions(health)
    customers_data.score_history(customer_id)
    customers_data.latest_churn(customer_id)
    customers_data.recent_sessions(customer_id)
    caller = fetch_all(url, "select customer_id from staging.stg_support__inbound_calls limit 1")
    if caller:
        calls = customers_data.recent_support_calls(int(caller[0]["customer_id"]))
        assert calls  # the staging view has the columns the detail view reads
    assert customers_data.recent_support_calls(customer_id) is not None
    customers_data.customer_alerts(customer_id)
    customers_data.customer_recommendations(customer_id)
    customers_data.channels()
    for sort in tutors_data.PAGE_SQL:
        assert tutors_data.tutor_page(TutorFilters(sort=sort, q="e")) is not None
    tutors = tutors_data.tutor_page(TutorFilters())
    assert tutors is not None
    assert tutors[1] > 0
    tutors_data.coaching_list()
    assert tutors_data.tutor_detail(tutor_id) is not None
    tutors_data.tutor_daily(tutor_id)
    subjects = forecasts_data.subjects()
    assert subjects is not None
    for subject in subjects[:1]:
        forecasts_data.actuals(int(subject["subject_id"]))
        forecasts_data.forecast(int(subject["subject_id"]))
    forecasts_data.gaps()
    forecasts_data.backtests()
    kpis = overview_data.kpi_rows()
    assert kpis  # marts.ops_kpis_daily has today
    assert overview_data.cards(kpis)[0].value is not None
    assert overview_data.top_gaps() is not None
    assert models_data.raw_freshness()
    assert {m["mart"] for m in models_data.mart_freshness()} >= {
        "customer_health",
        "ops_kpis_daily",
    }


@pytest.mark.parametrize(
    ("page", "title", "tables"),
    [
        ("customers", "Customers", 1),
        ("tutors", "Tutors", 1),
        ("forecasts", "Forecasts & supply", 0),
        ("overview", "Overview", 1),
    ],
)
def test_pages_render_on_the_dbt_marts(built: Marts, page: str, title: str, tables: int) -> None:
    script = PROJECT_ROOT / "app_streamlit" / "views" / f"{page}.py"
    at = AppTest.from_file(str(script), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert not at.error
    assert at.title[0].value == title
    assert len(at.dataframe) >= tables


def test_detail_says_since_sign_up_for_a_customer_without_a_completed_session(
    built: Marts,
) -> None:
    """The mart counts days from sign-up when no session was completed; the detail said "days
    since last session" above "No sessions on record"."""
    script = str(PROJECT_ROOT / "app_streamlit" / "views" / "customers.py")
    labels = {}
    for has_session in (True, False):
        (row,) = fetch_all(
            built.warehouse_url,
            "select customer_id, days_since_last_session from marts.customer_health"
            " where (last_session_date is not null) = %(has)s order by customer_id limit 1",
            {"has": has_session},
        )
        at = AppTest.from_file(script, default_timeout=TIMEOUT)
        at.query_params["customer_id"] = str(row["customer_id"])
        at.run()
        assert not at.exception
        (metric,) = [m for m in at.metric if m.label.startswith("Days since")]
        assert metric.value == f"{row['days_since_last_session']:,}"
        labels[has_session] = metric.label
    assert labels == {True: "Days since last session", False: "Days since sign-up"}

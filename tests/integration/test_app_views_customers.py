"""The Customers page through `AppTest`, against a scratch warehouse with hand-made marts rows.

The marts are created here with the columns the page reads (the dbt models are not built in
this tier); names come from marts.customer_directory and sessions from
intermediate.int_sessions_deduplicated, as in production (the app reads no raw.* table).
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Jsonb
from streamlit.testing.v1 import AppTest

from app_streamlit import session
from app_streamlit.view_text import markdown_text
from app_streamlit.views import customers
from opsdash_core import accounts
from tests.integration.test_app_streamlit import (  # noqa: F401 - app_env is a fixture
    PASSWORD,
    TIMEOUT,
    _app,
    _log_in,
    app_env,
)

pytestmark = pytest.mark.integration

XSS = "<script>alert(1)</script>"
MARTS = """
create schema if not exists marts;
create table marts.customer_health (
    customer_id bigint primary key,
    risk_score double precision not null,
    risk_tier text not null,
    base_risk_score double precision,
    risk_forced_reason text,
    top_risk_component text,
    risk_score_change_7d double precision,
    recency_risk double precision, recency_weight double precision,
    recency_points double precision,
    rating_risk double precision, rating_weight double precision, rating_points double precision,
    tenure_risk double precision, tenure_weight double precision, tenure_points double precision,
    days_since_last_session integer,
    sessions_30d integer,
    avg_rating_30d numeric(3, 2),
    inbound_calls_30d integer,
    tenure_days integer,
    acquisition_channel text,
    scoring_profile text,
    computed_at timestamptz not null default now()
);
create table marts.customer_directory (
    customer_id bigint primary key,
    full_name text,
    email text,
    customer_status text,
    is_active boolean,
    is_deleted boolean,
    computed_at timestamptz not null default now()
);
create schema if not exists intermediate;
create table intermediate.int_sessions_deduplicated (
    session_id bigint primary key,
    customer_id bigint,
    tutor_id bigint,
    subject_id bigint,
    scheduled_at timestamptz,
    duration_minutes integer,
    session_status text,
    rating integer
);
create schema if not exists staging;
create table staging.stg_support__inbound_calls (
    call_id bigint primary key,
    customer_id bigint,
    reason_code text,
    channel text,
    duration_seconds integer,
    is_resolved boolean,
    called_at timestamptz
);
create table marts.customer_health_history (
    customer_id bigint not null,
    snapshot_date date not null,
    risk_score double precision not null,
    risk_tier text not null
);
"""
CUSTOMER = """
insert into marts.customer_directory (customer_id, email, full_name, customer_status, is_active,
                                     is_deleted)
values (%s, %s, %s, 'active', true, false)
"""
HEALTH = """
insert into marts.customer_health (customer_id, risk_score, risk_tier, top_risk_component,
    risk_score_change_7d, recency_risk, recency_weight, recency_points, tenure_risk,
    tenure_weight, tenure_points, days_since_last_session, sessions_30d, inbound_calls_30d,
    tenure_days, acquisition_channel, scoring_profile)
values (%s, %s, %s, 'recency', %s, 1.0, 40.0, %s, 0.2, 10.0, 2.0, 20, 1, 0, 100, %s, %s)
"""
PEOPLE = [
    # id, name, e-mail, channel, score, tier, change, segment
    (1, "Ada Lovelace", "ada@example.com", "ads", 12.0, "low", -3.0, "established"),
    (2, "Grace Hopper", "grace@example.com", "referral", 55.0, "high", 4.0, "new"),
    (3, XSS, "x@example.com", "ads", 91.0, "critical", 10.0, "established"),
]
# As ml.explain writes them: plain words, direction and the suggested intervention.
FACTORS = [
    {
        "feature": "recency_days",
        "shap": 0.9,
        "direction": "raises",
        "reason": "no session in 41 days",
        "action": "Call to book the next session",
    },
    {
        "feature": "support_calls_30d",
        "shap": 0.4,
        "direction": "raises",
        "reason": "5 support calls in the last 30 days",
        "action": "Have support review the open issues",
    },
    {
        "feature": "customer_age_days",
        "shap": -0.2,
        "direction": "lowers",
        "reason": "a customer for 2 years",
        "action": None,
    },
    {"feature": "fourth", "shap": 0.01, "direction": "raises", "reason": "ignored", "action": None},
]
CALL = """
insert into staging.stg_support__inbound_calls
values (%s, %s, %s, 'phone', %s, %s, now() - make_interval(days => %s))
"""
ALERT = """
insert into app.alerts (rule, entity_type, entity_id, severity, title, status, dedupe_key)
values ('customer_critical', 'customer', %s, %s, %s, %s, %s)
"""
RECOMMENDATION = """
insert into app.recommendations (entity_type, entity_id, rec_type, reason_code, reason, action,
                                 priority, status)
values ('customer', %s, 'call_customer', 'critical_risk', %s, %s, %s, %s)
"""


def _seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(MARTS)
        for cid, name, email, channel, score, tier, change, segment in PEOPLE:
            conn.execute(CUSTOMER, (cid, email, name))
            conn.execute(HEALTH, (cid, score, tier, change, score - 2.0, channel, segment))
        for day, score, tier in [(2, 70.0, "high"), (1, 85.0, "critical"), (0, 91.0, "critical")]:
            conn.execute(
                "insert into marts.customer_health_history"
                " values (3, current_date - %s::int, %s, %s)",
                (day, score, tier),
            )
        conn.execute(
            "insert into ml.churn_scores (customer_id, scored_at, churn_probability, top_factors,"
            " model_name, model_version) values (3, now(), 0.73, %s, 'churn', '4')",
            (Jsonb(FACTORS),),
        )
        for call_id, customer_id, reason, seconds, resolved, days in [
            (501, 3, "tutor_quality", 300, False, 1),
            (502, 3, "billing", 90, True, 4),
            (503, 1, "technical", 60, True, 2),
        ]:
            conn.execute(CALL, (call_id, customer_id, reason, seconds, resolved, days))
        for customer_id, severity, title, status in [
            (3, "critical", f"Customer 3 critical {XSS}", "open"),
            (3, "warning", "Customer 3 rising", "resolved"),
            (2, "warning", "Customer 2 rising", "open"),
        ]:
            conn.execute(ALERT, (customer_id, severity, title, status, f"c{customer_id}{status}"))
        for customer_id, reason, action, priority, status in [
            (3, "Risk score 91", "Call today", 90.0, "active"),
            (2, "Risk rising", "Send a check-in e-mail", 40.0, "active"),
        ]:
            conn.execute(RECOMMENDATION, (customer_id, reason, action, priority, status))
        conn.execute(
            "insert into intermediate.int_sessions_deduplicated (session_id, customer_id,"
            " tutor_id, subject_id, scheduled_at, duration_minutes, session_status, rating)"
            " values (77, 3, 9, 2, now() - interval '3 days', 60, 'completed', 2)"
        )


@pytest.fixture
def viewer(app_env: str, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    """Render pages as a logged-in viewer without going through bcrypt every time."""
    user = accounts.User(id=2, username="val", role="viewer")
    monkeypatch.setattr(session, "current_user", lambda: user)
    return app_env


def _page(query: dict[str, str] | None = None) -> AppTest:
    def script() -> None:
        from app_streamlit.views import customers

        customers.render()

    at = AppTest.from_function(script, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


def test_viewer_finds_the_customers_page_in_the_navigation(app_env: str) -> None:  # noqa: F811
    _seed(app_env)
    with psycopg.connect(app_env, autocommit=True) as conn:
        accounts.create_user(conn, "val", PASSWORD, "viewer")
    at = _log_in(_app(), "val")
    at.switch_page("views/customers.py").run()
    assert not at.exception
    assert at.title[0].value == "Customers"
    assert list(at.dataframe[0].value["customer_id"]) == [3, 2, 1]


def test_list_with_names_tiers_and_filters(viewer: str) -> None:
    _seed(viewer)
    at = _page()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["full_name"]) == [XSS, "Grace Hopper", "Ada Lovelace"]
    assert [list(t) for t in table["risk_tier"]] == [["critical"], ["high"], ["low"]]  # badges
    assert not any(m.proto.allow_html for m in at.markdown)

    at.selectbox(key="customers_tier").select("high").run()
    assert list(at.dataframe[0].value["customer_id"]) == [2]
    assert at.query_params["tier"] == "high"

    at.selectbox(key="customers_tier").select("").run()
    at.text_input(key="customers_q").input("ADA@").run()
    assert list(at.dataframe[0].value["full_name"]) == ["Ada Lovelace"]
    assert at.query_params["q"] == "ADA@"


def test_filters_come_from_a_shared_url(viewer: str) -> None:
    _seed(viewer)
    at = _page({"channel": "ads", "sort": "risk_asc"})
    assert not at.exception
    assert list(at.dataframe[0].value["customer_id"]) == [1, 3]
    at = _page({"trend": "rising", "channel": "referral"})
    assert list(at.dataframe[0].value["customer_id"]) == [2]
    at = _page({"q": "nobody"})
    assert customers.NO_MATCH_MESSAGE in [i.value for i in at.info]


def test_segment_filter_from_the_url_and_the_selectbox(viewer: str) -> None:
    _seed(viewer)
    at = _page({"segment": "new"})
    assert not at.exception
    assert list(at.dataframe[0].value["customer_id"]) == [2]
    assert list(at.dataframe[0].value["scoring_profile"]) == ["new"]
    at.selectbox(key="customers_segment").select("established").run()
    assert list(at.dataframe[0].value["customer_id"]) == [3, 1]
    assert at.query_params["segment"] == "established"
    assert _page({"segment": "vip"}).dataframe[0].value.shape[0] == 3  # unknown: any


def test_detail_shows_history_components_churn_and_sessions(viewer: str) -> None:
    _seed(viewer)
    at = _page({"customer_id": "3"})
    assert not at.exception
    assert at.title[0].value == "Customer 3"
    # The name is shown literally (escaped Markdown), never as HTML.
    assert at.subheader[0].value == "\\<script\\>alert\\(1\\)\\<\\/script\\>"
    assert not any(m.proto.allow_html for m in at.markdown)
    assert not at.get("html")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Churn probability"] == "73%"
    assert metrics["Tier"] == "critical"
    assert len(at.get("vega_lite_chart")) == 2
    factors, sessions, calls, alerts, recs = (df.value for df in at.dataframe)
    # The top 3 factors in words with what to do; no feature names or SHAP numbers.
    assert list(factors.columns) == ["factor", "effect", "intervention"]
    assert factors.to_dict("records") == [
        {
            "factor": "no session in 41 days",
            "effect": "raises the risk",
            "intervention": "Call to book the next session",
        },
        {
            "factor": "5 support calls in the last 30 days",
            "effect": "raises the risk",
            "intervention": "Have support review the open issues",
        },
        {"factor": "a customer for 2 years", "effect": "lowers the risk", "intervention": ""},
    ]
    assert list(sessions["session_id"]) == [77]
    assert list(calls["reason_code"]) == ["tutor quality", "billing"]  # newest first, its own
    assert list(calls["minutes"]) == [5.0, 1.5]
    assert list(alerts["title"]) == [f"Customer 3 critical {XSS}", "Customer 3 rising"]
    assert list(alerts["status"]) == ["open", "resolved"]  # live ones first
    assert all(link.startswith("/alerts?alert=") for link in alerts["link"])
    assert list(recs["action"]) == ["Call today"]
    scored = markdown_text("Churn model churn 4, scored ")  # shown literally
    assert any(c.value.startswith(scored) for c in at.caption)
    assert any(c.value.endswith(" UTC") for c in at.caption)


def test_unknown_customer_says_so(viewer: str) -> None:
    _seed(viewer)
    at = _page({"customer_id": "999"})
    assert not at.exception
    assert [w.value for w in at.warning] == [customers.NOT_FOUND_MESSAGE.format(customer_id=999)]


def test_empty_state_without_the_mart(viewer: str) -> None:
    at = _page()
    assert not at.exception
    assert [i.value for i in at.info] == [customers.EMPTY_MESSAGE]
    assert not at.dataframe


def test_detail_without_scores_or_history(viewer: str) -> None:
    _seed(viewer)
    at = _page({"customer_id": "1"})
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Churn probability"] == "—"
    assert "No score history yet" in at.info[0].value
    captions = [c.value for c in at.caption]
    assert "No alerts about this customer." in captions
    assert "No recommendations for this customer." in captions


def test_detail_says_when_support_calls_are_not_built_yet(viewer: str) -> None:
    _seed(viewer)
    with psycopg.connect(viewer, autocommit=True) as conn:
        conn.execute("drop table staging.stg_support__inbound_calls")
    at = _page({"customer_id": "3"})
    assert not at.exception
    assert customers.NO_CALLS_VIEW in [c.value for c in at.caption]

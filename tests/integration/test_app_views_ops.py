"""The operations pages (Overview, Models & data, Alerts, Recommendations) through `AppTest`.

One scratch warehouse per module, seeded once with hand-made marts rows and app/ml/quality rows
(the dbt models are not built in this tier; test_app_views_marts runs the queries on real
marts). Pages are rendered as a given role by replacing `session.current_user`, so only the
navigation test pays for bcrypt. Tests that change rows use their own ids and never assume
the order in which they run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from app_streamlit import data, session
from opsdash_core import accounts, login_limits
from opsdash_core.db import close_pools
from opsdash_core.settings import get_settings, reset_settings

pytestmark = pytest.mark.integration

TIMEOUT = 30
PASSWORD = "correct-horse-1"
XSS = "<script>alert(1)</script>"

MARTS = """
create schema if not exists marts;
create table marts.customer_health (
    customer_id bigint primary key,
    risk_score double precision not null,
    risk_tier text not null,
    days_since_last_session integer,
    sessions_30d integer,
    avg_rating_30d numeric(3, 2),
    inbound_calls_30d integer,
    tenure_days integer,
    computed_at timestamptz not null
);
insert into marts.customer_health values
    (1, 12.0, 'low', 2, 8, 4.80, 0, 400, now() - interval '5 minutes'),
    (2, 78.5, 'high', 25, 0, 2.80, 3, 60, now() - interval '5 minutes'),
    (3, 93.0, 'critical', 41, 0, 2.10, 5, 30, now() - interval '5 minutes');
create table marts.ops_kpis_daily (
    kpi_date date primary key,
    active_customers bigint, sessions_scheduled bigint, sessions_completed bigint,
    completion_rate numeric, avg_rating numeric, at_risk_customers bigint,
    critical_customers bigint, open_alerts bigint,
    active_customers_change_1d bigint, sessions_completed_change_1d bigint,
    completion_rate_change_1d numeric, avg_rating_change_1d numeric,
    at_risk_customers_change_1d bigint, open_alerts_change_1d bigint,
    computed_at timestamptz not null
);
insert into marts.ops_kpis_daily values
    (current_date - 2, 1180, 300, 250, 88.0, 4.50, 40, 5, 3, null, null, null, null, null, null,
     now() - interval '3 minutes'),
    (current_date - 1, 1190, 310, 260, 90.0, 4.60, 42, 6, 4, 10, 10, 2.0, 0.10, 2, 1,
     now() - interval '3 minutes'),
    (current_date, 1200, 120, 100, 91.5, 4.62, 45, 7, 2, 10, -160, 1.5, 0.02, 3, -2,
     now() - interval '3 minutes');
create table marts.demand_supply_gaps_hourly (
    subject_id bigint, subject_name text, hour_at timestamptz,
    forecast_requested_sessions double precision, available_tutor_hours double precision,
    forecast_supply_gap double precision
);
insert into marts.demand_supply_gaps_hourly values
    (1, 'Algebra', date_trunc('hour', now()) + interval '3 hours', 12.0, 4.0, 8.0),
    (2, 'Chemistry', date_trunc('hour', now()) + interval '5 hours', 6.0, 5.0, 1.0),
    (3, 'Physics', date_trunc('hour', now()) + interval '2 hours', 2.0, 9.0, -7.0),
    (1, 'Algebra', date_trunc('hour', now()) + interval '30 hours', 40.0, 1.0, 39.0);
"""
MONITORING = """
insert into ml.churn_drift (monitored_date, model_name, model_version, feature, psi, is_drifted,
                            threshold)
values (current_date - 1, 'churn_logreg', '3', 'sessions_30d', 0.05, false, 0.2),
       (current_date, 'churn_logreg', '3', 'sessions_30d', 0.31, true, 0.2),
       (current_date, 'churn_logreg', '3', 'tenure_days', 0.02, false, 0.2);
insert into ml.churn_accuracy (scored_date, model_name, model_version, customers, churned,
                               roc_auc, recall, precision, threshold)
values (current_date - 40, 'churn_logreg', '3', 1000, 80, 0.81, 0.6, 0.5, 0.3),
       (current_date - 39, 'churn_logreg', '3', 1000, 75, 0.79, 0.55, 0.52, 0.3);
insert into ml.model_monitoring (model_name, subject_id, monitored_date, served_model, hours,
                                 mae, mase, coverage)
values ('demand_forecast', 1, current_date - 1, 'prophet', 24, 1.2, 0.8, 0.93);
insert into quality.check_runs (check_name, asset_key, suite, severity, success, expectations,
                                failed, rows_checked)
values ('raw_sessions_contract', 'raw/sessions', 'sessions', 'error', false, 12, 2, 500),
       ('mart_customer_health', 'marts/customer_health', 'health', 'warn', true, 5, 0, 3);
insert into raw.watermarks (table_name, watermark, rows_loaded, updated_at)
values ('sessions', now() - interval '7 minutes', 1234, now() - interval '6 minutes');
insert into app.alert_rule_state (rule, last_success_at, last_evaluated_at)
values ('__sensors__', now() - interval '25 minutes', now() - interval '25 minutes');
insert into app.notification_outbox (channel, subject, body, status, attempts, last_error,
                                     given_up_at)
values ('email', '=HYPERLINK("x") critical customer', 'body', 'given_up', 9,
        'SMTP connection refused', now());
"""
ALERT = """
insert into app.alerts (rule, entity_type, entity_id, severity, title, status, dedupe_key,
                        group_key)
values (%s, 'customer', %s, %s, %s, %s, %s, %s)
returning id
"""
RECOMMENDATION = """
insert into app.recommendations (entity_type, entity_id, rec_type, reason_code, reason, action,
                                 priority, status)
values ('customer', %s, 'call_customer', %s, %s, %s, %s, %s)
returning id
"""


@dataclass(frozen=True)
class Seeded:
    url: str
    critical_alert: int
    warning_alert: int
    recommendation: int


def _seed(url: str) -> Seeded:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(MARTS)
        conn.execute(MONITORING)
        ids = []
        for rule, entity, severity, title, status in [
            ("customer_critical", 3, "critical", f"Customer 3 critical {XSS}", "open"),
            ("customer_critical", 2, "warning", "Customer 2 rising", "open"),
            ("tutor_no_shows", 9, "info", "Tutor 9 no-shows", "acknowledged"),
            ("customer_critical", 1, "info", "Customer 1 old", "resolved"),
        ]:
            row = conn.execute(
                ALERT, (rule, entity, severity, title, status, f"{rule}:{entity}", rule)
            ).fetchone()
            assert row is not None
            ids.append(int(row[0]))
        rec = conn.execute(
            RECOMMENDATION,
            (
                3,
                "critical_risk",
                "Risk score 93, no session for 41 days",
                "Call today",
                90.0,
                "active",
            ),
        ).fetchone()
        conn.execute(
            RECOMMENDATION,
            (2, "rising_risk", "Risk rising", "Send a check-in e-mail", 40.0, "active"),
        )
        conn.execute(RECOMMENDATION, (1, "old", "Old", "Done already", 99.0, "accepted"))
        assert rec is not None
        for name, role in [("val", "viewer"), ("opal", "operator"), ("boss", "admin")]:
            accounts.create_user(conn, name, PASSWORD, role)
    return Seeded(url, ids[0], ids[1], int(rec[0]))


@pytest.fixture(scope="module")
def seeded(module_scratch_db) -> Iterator[Seeded]:  # type: ignore[no-untyped-def]
    """One migrated, seeded warehouse for the module; WAREHOUSE_URL points at it."""
    from opsdash_core.migrate import upgrade

    url = module_scratch_db("ops")
    upgrade(url)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WAREHOUSE_URL", url)
        reset_settings()
        data.clear_cache()
        redis_url = get_settings().redis_url
        limiter = login_limits.RedisLoginLimiter(redis_url, prefix="opsdash:test:ops")
        mp.setattr(login_limits, "_limiters", {redis_url: limiter})
        mp.setattr(session, "read_cookie", lambda: None)
        yield _seed(url)
        close_pools()
        data.clear_cache()
    reset_settings()


@pytest.fixture
def as_role(seeded: Seeded, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Log a role in without bcrypt: `as_role("viewer")` then render pages."""

    def log_in(role: str) -> accounts.User:
        user = {
            "viewer": accounts.User(id=1, username="val", role="viewer"),
            "operator": accounts.User(id=2, username="opal", role="operator"),
            "admin": accounts.User(id=3, username="boss", role="admin"),
        }[role]
        monkeypatch.setattr(session, "current_user", lambda: user)
        return user

    # A private cache namespace per test: a test that changes rows must not read another's.
    monkeypatch.setattr(data, "KEY_PREFIX", f"opsdash:test:q:{uuid.uuid4().hex[:8]}")
    data.clear_cache()

    return log_in


def _page(module: str, query: dict[str, str] | None = None) -> AppTest:
    script = f"from app_streamlit.views import {module}\n{module}.render()\n"
    at = AppTest.from_string(script, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


def _metrics(at: AppTest) -> dict[str, tuple[str, str]]:
    return {m.label: (m.value, m.proto.delta) for m in at.metric}


# -------------------------------------------------------------------------------- overview


def test_overview_cards_banner_gaps_and_recommendations(seeded: Seeded, as_role) -> None:  # type: ignore[no-untyped-def]
    as_role("viewer")
    at = _page("overview")
    assert not at.exception
    metrics = _metrics(at)
    assert metrics["Active customers"] == ("1,200", "+10")
    assert metrics["Sessions today"] == ("120", "-190")
    assert metrics["Completion rate"] == ("91.5%", "+1.5 pp")
    assert metrics["Average rating"] == ("4.62", "+0.02")
    assert metrics["At-risk customers"] == ("45", "+3")
    assert metrics["Open alerts"] == ("2", "-2")
    assert any(m.proto.chart_data for m in at.metric)  # sparklines
    assert "critical 1 · warning 1 · info 0" in [c.value for c in at.caption]
    (banner,) = [e.value for e in at.error]
    assert "1 open critical alert" in banner
    assert "\\<script\\>" in banner  # escaped: Markdown shows the title as text
    gaps, recs = at.dataframe[0].value, at.dataframe[1].value
    assert list(gaps["subject_name"]) == ["Algebra", "Chemistry"]  # next 24 h, shortfalls only
    assert list(recs["action"]) == ["Call today", "Send a check-in e-mail"]
    assert any(c.value.startswith("Updated ") and c.value.endswith("UTC") for c in at.caption)


def test_overview_without_recommendations_says_what_to_do(seeded: Seeded, as_role) -> None:  # type: ignore[no-untyped-def]
    from app_streamlit.views import overview

    as_role("viewer")
    with psycopg.connect(seeded.url, autocommit=True) as conn:
        conn.execute("alter table app.recommendations rename to recommendations_hidden")
        try:
            at = _page("overview")
        finally:
            conn.execute("alter table app.recommendations_hidden rename to recommendations")
    assert not at.exception
    assert overview.NO_RECOMMENDATIONS in [i.value for i in at.info]


# ------------------------------------------------------------------------ models & data


def test_models_page_shows_health_monitoring_quality_freshness_and_failures(
    seeded: Seeded,
    as_role,  # type: ignore[no-untyped-def]
) -> None:
    from app_streamlit import models_data

    models_data.clear_memo()
    as_role("operator")
    at = _page("models")
    assert not at.exception
    assert at.title[0].value == "Models & data"
    (attention,) = [w.value for w in at.warning if w.value.startswith("Needs attention")]
    assert "Alert sensors: Last successful tick 25 min ago" in attention
    assert "MLflow: Not reachable" in attention  # no MLflow in this tier
    markdown = " ".join(m.value for m in at.markdown)
    assert "**PostgreSQL** — ok" in markdown
    assert "**Redis** — ok" in markdown
    from app_streamlit.views import models

    assert models.NO_CHAMPIONS in [i.value for i in at.info]
    charts = at.get("vega_lite_chart")
    assert len(charts) == 3  # drift, accuracy, forecast monitoring
    frames = {tuple(df.value.columns): df.value for df in at.dataframe}
    drifted = next(f for cols, f in frames.items() if "psi" in cols)
    assert list(drifted["feature"]) == ["sessions_30d"]
    quality = next(f for cols, f in frames.items() if "check_name" in cols and "suite" not in cols)
    assert not quality.set_index("check_name").loc["raw_sessions_contract", "success"]
    raw = next(f for cols, f in frames.items() if "table_name" in cols)
    # seeded 6 minutes before the module's first test; a loaded machine may take minutes to get here
    age = str(raw.set_index("table_name").loc["sessions", "age"])
    assert age.endswith(" min ago")
    assert int(age.split()[0]) >= 6
    assert raw.set_index("table_name").loc["customers", "age"] == "never"
    marts = next(f for cols, f in frames.items() if "mart" in cols)
    assert set(marts["mart"]) == {"customer_health", "ops_kpis_daily"}
    failed = next(f for cols, f in frames.items() if "last_error" in cols)
    assert list(failed["last_error"]) == ["SMTP connection refused"]


def test_viewer_cannot_open_models_page(seeded: Seeded, as_role) -> None:  # type: ignore[no-untyped-def]
    as_role("viewer")
    at = _page("models")
    assert [e.value for e in at.error] == ["You need the operator role to open this page."]
    assert not at.dataframe


# ---------------------------------------------------------------------------------- alerts


def test_alerts_grouped_by_rule_with_url_filters(seeded: Seeded, as_role) -> None:  # type: ignore[no-untyped-def]
    as_role("viewer")
    at = _page("alerts")
    assert not at.exception
    labels = [e.label for e in at.expander]
    assert any(label.startswith("customer_critical — 2 alerts") for label in labels)
    assert any(label.startswith("tutor_no_shows — 1 alerts") for label in labels)
    assert not at.get("download_button")  # exports are for operators
    at = _page("alerts", {"severity": "critical"})
    (frame,) = [df.value for df in at.dataframe if "title" in df.value.columns]
    assert list(frame["id"]) == [seeded.critical_alert]
    assert frame.loc[0, "title"] == f"Customer 3 critical {XSS}"  # text cell, not HTML
    at = _page("alerts", {"status": "all", "entity": "customer:1"})
    (frame,) = [df.value for df in at.dataframe if "title" in df.value.columns]
    assert list(frame["status"]) == ["resolved"]


def test_operator_csv_export_is_audited(seeded: Seeded, as_role) -> None:  # type: ignore[no-untyped-def]
    """The download writes one export_csv row: who, what, how many rows, with which filters;
    the file's cells that look like formulas are neutralized."""
    as_role("operator")
    at = _page("alerts", {"status": "all", "severity": "critical"})
    (button,) = at.download_button
    assert button.label == "Download CSV"
    before = _exports(seeded)
    at = button.click().run()
    assert not at.exception
    (row,) = _exports(seeded)[len(before) :]
    username, details = row
    assert username == "opal"
    assert details["export"] == "alerts"
    assert details["rows"] == 1
    assert details["severity"] == "critical"
    assert details["status"] == "all"


def _exports(seeded: Seeded) -> list[tuple[str, dict]]:
    with psycopg.connect(seeded.url) as conn:
        rows = conn.execute(
            "select username, details from app.audit_log where action = 'export_csv' order by id"
        ).fetchall()
    return [(str(u), dict(d)) for u, d in rows]


def test_alert_deep_link_shows_history_and_viewer_gets_no_actions(seeded: Seeded, as_role) -> None:  # type: ignore[no-untyped-def]
    from app_streamlit.views import alerts

    as_role("viewer")
    at = _page("alerts", {"alert": str(seeded.warning_alert)})
    assert not at.exception
    assert at.title[0].value == f"Alert {seeded.warning_alert}"
    assert alerts.READ_ONLY in [i.value for i in at.info]
    assert not [b for b in at.button if b.label in {"Acknowledge", "Resolve", "Dismiss"}]
    assert not at.get("form_submit_button") or all(
        "silence" not in str(b.label).lower() for b in at.get("form_submit_button")
    )


def test_operator_acknowledges_with_confirm_and_a_demoted_user_is_refused(
    seeded: Seeded,
    as_role,  # type: ignore[no-untyped-def]
) -> None:
    from app_streamlit.views import alerts

    as_role("operator")
    at = _page("alerts", {"alert": str(seeded.critical_alert)})
    labels = [b.label for b in at.button]
    assert {"Acknowledge", "Resolve", "Dismiss"} <= set(labels)
    at = at.button(key="alert_action_acknowledge").click().run()
    assert "**Acknowledge alert" in " ".join(m.value for m in at.markdown)  # the confirm step
    assert _status(seeded, seeded.critical_alert) == "open"  # nothing happened yet

    # Demoted to viewer before confirming: the page no longer processes the form ...
    as_role("viewer")
    at.text_area(key="alert_comment_acknowledge").input("looking at it")
    demoted = at.button(key="FormSubmitter:confirm_acknowledge-Confirm acknowledge").click().run()
    assert alerts.READ_ONLY in [i.value for i in demoted.info]
    assert _status(seeded, seeded.critical_alert) == "open"
    # ... and an action that still reaches the library as a viewer is refused there.
    script = (
        "from app_streamlit.views import alerts\n"
        f"alerts.perform('acknowledge', {seeded.critical_alert}, 'sneaky')\n"
    )
    refused = AppTest.from_string(script, default_timeout=TIMEOUT).run()
    assert [e.value for e in refused.error] == [alerts.REFUSED.format(role="viewer")]
    assert _status(seeded, seeded.critical_alert) == "open"

    as_role("operator")
    at = _page("alerts", {"alert": str(seeded.critical_alert)})
    at = at.button(key="alert_action_acknowledge").click().run()
    at.text_area(key="alert_comment_acknowledge").input("looking at it")
    as_role("operator")
    at = at.button(key="FormSubmitter:confirm_acknowledge-Confirm acknowledge").click().run()
    assert not at.exception
    assert _status(seeded, seeded.critical_alert) == "acknowledged"
    history = next(df.value for df in at.dataframe if "to_status" in df.value.columns)
    assert "acknowledged" in list(history["to_status"])
    with psycopg.connect(seeded.url) as conn:
        audited = conn.execute(
            "select username, details->>'comment' from app.audit_log"
            " where action = 'alert_acknowledged'"
        ).fetchall()
    assert audited == [("opal", "looking at it")]


def test_operator_silences_an_alert_rule(seeded: Seeded, as_role) -> None:  # type: ignore[no-untyped-def]
    as_role("operator")
    at = _page("alerts", {"alert": str(seeded.warning_alert)})
    at.checkbox(key="silence_by_entity").uncheck()
    at.text_area(key="silence_comment").input("known issue, fix deploying")
    at = at.button(key="FormSubmitter:silence-Create silence").click().run()
    assert not at.exception
    assert any(s.value.startswith("Silence ") for s in at.success)
    with psycopg.connect(seeded.url) as conn:
        rows = conn.execute("select rule, entity_id, created_by from app.silences").fetchall()
    assert rows == [("customer_critical", None, "opal")]


def _status(seeded: Seeded, alert_id: int) -> str:
    with psycopg.connect(seeded.url) as conn:
        row = conn.execute("select status from app.alerts where id = %s", (alert_id,)).fetchone()
    assert row is not None
    return str(row[0])


# ------------------------------------------------------------------------- recommendations


def test_recommendations_viewer_reads_operator_accepts(seeded: Seeded, as_role) -> None:  # type: ignore[no-untyped-def]
    from app_streamlit.views import recommendations

    as_role("viewer")
    at = _page("recommendations")
    assert not at.exception
    frame = at.dataframe[0].value
    assert list(frame["action"])[:2] == ["Call today", "Send a check-in e-mail"]
    assert recommendations.READ_ONLY in [c.value for c in at.caption]
    assert not at.get("form_submit_button")
    assert any("No effectiveness data yet" in i.value for i in at.info)

    as_role("operator")
    at = _page("recommendations", {"rec": str(seeded.recommendation)})
    at.text_input(key="rec_detail_comment").input("calling at 10")
    at = at.button(key="FormSubmitter:act_on_this-Accept").click().run()
    assert not at.exception
    with psycopg.connect(seeded.url) as conn:
        row = conn.execute(
            "select status, acted_by, comment from app.recommendations where id = %s",
            (seeded.recommendation,),
        ).fetchone()
    assert row == ("accepted", "opal", "calling at 10")


def test_viewer_recommendation_action_is_refused_server_side(seeded: Seeded, as_role) -> None:  # type: ignore[no-untyped-def]
    """A viewer who gets a request through (no control is shown) is refused by the library."""
    from app_streamlit.views import recommendations

    as_role("viewer")
    script = (
        "from app_streamlit.views import recommendations\n"
        f"recommendations.perform('dismiss', {seeded.recommendation}, 'nope')\n"
    )
    at = AppTest.from_string(script, default_timeout=TIMEOUT).run()
    assert [e.value for e in at.error] == [recommendations.REFUSED.format(role="viewer")]


# ------------------------------------------------------------------------------ navigation


def test_navigation_per_role(seeded: Seeded) -> None:
    """Real logins: viewers see no Models & data nor Admin; operators see Models & data."""
    from tests.integration.test_app_streamlit import _app, _log_in

    viewer = _log_in(_app(), "val")
    with pytest.raises(ValueError, match="Could not find"):
        viewer.switch_page("views/models.py")
    viewer.switch_page("views/alerts.py").run()
    assert viewer.title[0].value == "Alerts"
    operator = _log_in(_app(), "opal")
    operator.switch_page("views/models.py").run()
    assert not operator.exception
    assert operator.title[0].value == "Models & data"

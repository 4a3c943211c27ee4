"""Pure logic of the operations pages: metric cards, CSV neutralization, alert toasts, URL
filters of the Alerts page, health verdicts (no services)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from app_streamlit import exports, live, models_data, overview_data
from app_streamlit.view_text import markdown_text
from app_streamlit.views import alerts
from opsdash_core.events import Event


def test_cards_take_today_and_its_change_with_a_series() -> None:
    rows = [
        {"active_customers": 100, "sessions_scheduled": 40, "completion_rate": 80.0},
        {
            "active_customers": 110,
            "sessions_scheduled": 10,
            "completion_rate": None,
            "active_customers_change_1d": 10,
        },
    ]
    cards = {c.label: c for c in overview_data.cards(rows)}
    assert cards["Active customers"].value == 110
    assert cards["Active customers"].change == 10
    assert cards["Active customers"].series == [100.0, 110.0]
    assert cards["Sessions today"].change == -30  # computed: the mart has no 1-day change
    assert cards["Completion rate"].value is None  # no data today, not zero
    assert cards["Average rating"].series == []


def test_csv_cells_that_look_like_formulas_are_quoted() -> None:
    data = exports.to_csv(
        ["name", "note"],
        [['=HYPERLINK("http://x")', "+1"], ["-2 days", "@SUM(A1)"], ["Ada", -3], ["\tx", None]],
    )
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ['\'=HYPERLINK("http://x")', "'+1"]
    assert rows[2] == ["'-2 days", "'@SUM(A1)"]
    assert rows[3] == ["Ada", "-3"]  # numbers stay numbers
    assert rows[4] == ["'\tx", ""]


def test_only_new_alert_events_make_toasts() -> None:
    new = Event("1-0", "alert_created", {"id": 7, "severity": "critical", "title": "Churn risk"})
    assert live.toast_text(new) == ("New critical alert: Churn risk (#7)", ":material/error:")
    assert live.toast_text(Event("2-0", "alert_updated", {"id": 7})) is None


def test_toast_shows_an_alert_title_literally() -> None:
    """st.toast renders Markdown: a customer's name in an alert title must not become a link,
    an image or emphasis; the text shows exactly as stored."""
    title = "Churn risk: [click](http://evil.example) ![x](http://evil.example/p.png) *Bob*"
    event = Event("1-0", "alert_created", {"id": 8, "severity": "warning", "title": title})
    text, icon = live.toast_text(event)  # type: ignore[misc]
    assert text == "New warning alert: " + markdown_text(title) + " (#8)"
    assert "\\[click\\]\\(http" in text
    assert "\\!\\[x\\]" in text
    assert "\\*Bob\\*" in text
    assert icon == ":material/warning:"
    # Neither the severity nor the id is free text in the toast.
    odd = Event(
        "2-0", "alert_created", {"id": "7](http://x)", "severity": "**boom**", "title": "t"}
    )
    assert live.toast_text(odd) == ("New info alert: t", ":material/info:")


def test_alert_filters_from_a_url_are_validated() -> None:
    assert alerts.parse_filters({"status": "bogus", "severity": "critical", "rule": "r"}) == {
        "status": "live",
        "severity": "critical",
        "rule": "r",
        "entity": "",
    }
    assert alerts.parse_entity("customer:42") == ("customer", 42)
    assert alerts.parse_entity("tutor") == ("tutor", None)
    assert alerts.parse_entity("42") == (None, 42)
    assert alerts.parse_entity("customer:x") == ("customer", None)


def test_sensor_heartbeat_warns_after_ten_minutes() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    fresh = models_data.sensor_health({"last_success_at": now - timedelta(minutes=2)}, now)
    stale = models_data.sensor_health(
        {"last_success_at": now - timedelta(minutes=11), "last_error": "boom"}, now
    )
    assert fresh.status == "ok"
    assert stale.status == "warn"
    assert "11 min ago" in stale.detail
    assert "boom" in stale.detail
    assert models_data.sensor_health(None, now).status == "warn"


def test_a_live_section_survives_a_database_outage() -> None:
    """A timer rerun runs only the section, outside the page's guard: it must say what happened
    and keep its timer instead of showing Streamlit's error box."""
    from streamlit.testing.v1 import AppTest

    def script() -> None:
        import psycopg

        from app_streamlit import live

        def body() -> None:
            raise psycopg.OperationalError("connection refused")

        live.section(body, key="down")

    at = AppTest.from_function(script).run()
    assert not at.exception
    assert at.warning[0].value.startswith("The database is not reachable right now")
    assert at.caption[0].value.startswith("Updated ")

"""The Tutors page through `AppTest`, against hand-made marts rows in a scratch warehouse."""

from __future__ import annotations

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from app_streamlit import session
from app_streamlit.views import tutors
from opsdash_core import accounts
from tests.integration.test_app_streamlit import (  # noqa: F401 - app_env is a fixture
    PASSWORD,
    TIMEOUT,
    _app,
    _log_in,
    app_env,
)

pytestmark = pytest.mark.integration

COLUMNS = """
    tutor_id bigint not null,
    sessions_scheduled_30d integer,
    sessions_completed_30d integer,
    tutor_no_shows_30d integer,
    avg_rating_30d numeric(3, 2),
    tutor_no_show_rate_30d numeric,
    first_session_success_rate_30d numeric,
    rebooking_rate_30d numeric,
    utilization_30d numeric,
    success_score double precision,
    is_judged boolean,
    is_underperforming boolean not null,
    underperforming_reason text
"""
MARTS = f"""
create schema if not exists marts;
create table marts.tutor_performance ({COLUMNS});
create table marts.tutor_directory (
    tutor_id bigint primary key,
    full_name text,
    email text,
    tutor_status text,
    is_active boolean,
    is_deleted boolean,
    computed_at timestamptz not null default now()
);
create table marts.tutor_performance_daily (
    performance_date date not null,
    sessions_scheduled integer,
    sessions_completed integer,
    tutor_no_shows integer,
    {COLUMNS}
);
"""
TUTOR = """
insert into marts.tutor_directory (tutor_id, email, full_name, tutor_status, is_active,
                                  is_deleted)
values (%s, %s, %s, 'active', true, false)
"""
PERFORMANCE = """
insert into marts.tutor_performance (tutor_id, sessions_scheduled_30d, sessions_completed_30d,
    tutor_no_shows_30d, avg_rating_30d, tutor_no_show_rate_30d, first_session_success_rate_30d,
    rebooking_rate_30d, utilization_30d, success_score, is_judged, is_underperforming,
    underperforming_reason)
values (%s, 40, %s, %s, 4.2, %s, 0.6, 0.5, 0.4, %s, true, %s, %s)
"""
DAILY = """
insert into marts.tutor_performance_daily (tutor_id, performance_date, sessions_scheduled,
    sessions_completed, tutor_no_shows, tutor_no_show_rate_30d, first_session_success_rate_30d,
    rebooking_rate_30d, success_score, is_underperforming)
values (7, current_date - %s::int, 3, 2, 1, %s, 0.5, 0.4, %s, true)
"""


def _seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(MARTS)
        conn.execute(TUTOR, (5, "tom@example.com", "Tom Good"))
        conn.execute(TUTOR, (7, "nia@example.com", "<b>Nia</b>"))
        conn.execute(PERFORMANCE, (5, 38, 0, 0.0, 88.0, False, None))
        conn.execute(PERFORMANCE, (7, 20, 6, 0.23, 31.0, True, "no-show rate 23% > 10%"))
        for day, rate, score in [(2, 0.1, 50.0), (1, 0.2, 40.0), (0, 0.23, 31.0)]:
            conn.execute(DAILY, (day, rate, score))


@pytest.fixture
def viewer(app_env: str, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    user = accounts.User(id=2, username="val", role="viewer")
    monkeypatch.setattr(session, "current_user", lambda: user)
    return app_env


def _page(query: dict[str, str] | None = None) -> AppTest:
    def script() -> None:
        from app_streamlit.views import tutors

        tutors.render()

    at = AppTest.from_function(script, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


def test_viewer_finds_the_tutors_page_in_the_navigation(app_env: str) -> None:  # noqa: F811
    _seed(app_env)
    with psycopg.connect(app_env, autocommit=True) as conn:
        accounts.create_user(conn, "val", PASSWORD, "viewer")
    at = _log_in(_app(), "val")
    at.switch_page("views/tutors.py").run()
    assert not at.exception
    assert at.title[0].value == "Tutors"


def test_table_and_coaching_list(viewer: str) -> None:
    _seed(viewer)
    at = _page()
    assert not at.exception
    coaching, table = (df.value for df in at.dataframe)
    assert list(coaching["tutor_id"]) == [7]
    assert list(coaching["underperforming_reason"]) == ["no-show rate 23% > 10%"]
    assert list(table["tutor_id"]) == [7, 5]  # weakest first
    assert list(table["full_name"]) == ["<b>Nia</b>", "Tom Good"]
    assert list(table["sessions_completed_30d"]) == [20, 38]

    at.selectbox(key="tutors_sort").select("volume").run()
    assert list(at.dataframe[1].value["tutor_id"]) == [5, 7]
    assert at.query_params["sort"] == "volume"


def test_coaching_filter_from_the_url(viewer: str) -> None:
    _seed(viewer)
    at = _page({"coaching": "1"})
    assert list(at.dataframe[1].value["tutor_id"]) == [7]
    at = _page({"q": "tom"})
    assert list(at.dataframe[1].value["tutor_id"]) == [5]


def test_detail_shows_trends_and_reason(viewer: str) -> None:
    _seed(viewer)
    at = _page({"tutor_id": "7"})
    assert not at.exception
    assert at.title[0].value == "Tutor 7"
    assert at.subheader[0].value == "\\<b\\>Nia\\<\\/b\\>"
    assert "no\\-show rate 23\\% \\> 10\\%" in at.warning[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["No-show rate"] == "23.0%"
    assert len(at.get("vega_lite_chart")) == 2


def test_empty_state_without_the_mart(viewer: str) -> None:
    at = _page()
    assert not at.exception
    assert [i.value for i in at.info] == [tutors.EMPTY_MESSAGE]


def test_nobody_to_coach(viewer: str) -> None:
    _seed(viewer)
    with psycopg.connect(viewer, autocommit=True) as conn:
        conn.execute("update marts.tutor_performance set is_underperforming = false")
    at = _page()
    assert tutors.NO_COACHING_MESSAGE in [c.value for c in at.caption]

"""The Forecasts & supply page through `AppTest`, against hand-made rows in a scratch warehouse
(ml.demand_forecasts and ml.forecast_backtests come from the migrations; the marts are made here).
"""

from __future__ import annotations

import json

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from app_streamlit import forecasts_data, session
from app_streamlit.views import forecasts
from opsdash_core import accounts
from tests.integration.test_app_streamlit import (  # noqa: F401 - app_env is a fixture
    PASSWORD,
    TIMEOUT,
    _app,
    _log_in,
    app_env,
)

pytestmark = pytest.mark.integration

MARTS = """
create schema if not exists marts;
create table marts.supply_demand_hourly (
    subject_id bigint not null,
    subject_name text,
    hour_at timestamptz not null,
    requested_sessions integer not null
);
create table marts.demand_supply_gaps_hourly (
    subject_id bigint not null,
    subject_name text,
    hour_at timestamptz not null,
    forecast_requested_sessions double precision,
    available_tutor_hours integer,
    forecast_supply_gap double precision
);
"""
SEED = """
insert into marts.supply_demand_hourly
select s.id, s.name, date_trunc('hour', now()) + make_interval(hours => h), 3
from (values (1, 'Algebra'), (2, 'Chemistry')) as s (id, name),
     generate_series(-48, 24) as h;
insert into marts.demand_supply_gaps_hourly
select s.id, s.name, date_trunc('hour', now()) + make_interval(hours => h), 4, 2, s.gap
from (values (1, 'Algebra', 2.0), (2, 'Chemistry', -1.0)) as s (id, name, gap),
     generate_series(0, 167) as h;
insert into ml.demand_forecasts (run_id, subject_id, hour_at, yhat, yhat_lower, yhat_upper, model,
                                 created_at)
select r.run_id, 1, date_trunc('hour', now()) + make_interval(hours => h), r.yhat, 1, 9, r.model,
       r.created_at
from (values ('old', 1.0, 'seasonal_naive', now() - interval '1 day'),
             ('new', 5.0, 'mstl', now())) as r (run_id, yhat, model, created_at),
     generate_series(0, 167) as h;
insert into ml.forecast_backtests (run_id, subject_id, model, origin_at, mase, coverage, is_served)
values ('new', 1, 'mstl', now() - interval '7 days', 0.8, 0.94, true),
       ('new', 1, 'mstl', now() - interval '14 days', 0.6, 0.96, true),
       ('new', 1, 'seasonal_naive', now() - interval '7 days', 1.1, 0.9, false);
"""


@pytest.fixture
def viewer(app_env: str, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    user = accounts.User(id=2, username="val", role="viewer")
    monkeypatch.setattr(session, "current_user", lambda: user)
    return app_env


def _seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(MARTS)
        conn.execute(SEED)


def _page(query: dict[str, str] | None = None) -> AppTest:
    def script() -> None:
        from app_streamlit.views import forecasts

        forecasts.render()

    at = AppTest.from_function(script, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


def test_viewer_finds_the_forecasts_page_in_the_navigation(app_env: str) -> None:  # noqa: F811
    _seed(app_env)
    with psycopg.connect(app_env, autocommit=True) as conn:
        accounts.create_user(conn, "val", PASSWORD, "viewer")
    at = _log_in(_app(), "val")
    at.switch_page("views/forecasts.py").run()
    assert not at.exception
    assert at.title[0].value == "Forecasts & supply"


def test_forecast_heatmap_and_serving_models(viewer: str) -> None:
    _seed(viewer)
    at = _page()
    assert not at.exception
    assert at.query_params["subject_id"] == "1"
    line, heatmap = (json.loads(c.proto.spec) for c in at.get("vega_lite_chart"))
    assert [layer["mark"]["type"] for layer in line["layer"]] == ["area", "line"]
    assert line["title"] == "Algebra: demand, last 7 days and next 7 days"
    forecast = forecasts_data.forecast(1)
    assert len(forecast) == 168
    assert {row["yhat"] for row in forecast} == {5.0}  # the latest run only
    assert len(forecasts_data.actuals(1)) == 48  # the past hours, not the outlook
    assert heatmap["mark"]["type"] == "rect"
    assert "Model: mstl" in at.caption[0].value
    table = at.dataframe[0].value
    assert list(table["served_model"]) == ["mstl"]
    assert table.loc[0, "mase"] == pytest.approx(0.7)
    assert table.loc[0, "seasonal_naive_mase"] == pytest.approx(1.1)
    assert list(table["subject"]) == ["Algebra"]


def test_subject_without_forecast_says_what_to_do(viewer: str) -> None:
    _seed(viewer)
    at = _page({"subject_id": "2"})
    assert not at.exception
    assert forecasts.NO_FORECAST_MESSAGE in [i.value for i in at.info]
    assert len(at.get("vega_lite_chart")) == 1  # the heatmap still shows


def test_empty_state_without_the_marts(viewer: str) -> None:
    at = _page()
    assert not at.exception
    assert [i.value for i in at.info] == [forecasts.EMPTY_MESSAGE]

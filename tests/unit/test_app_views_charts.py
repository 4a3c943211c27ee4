"""Chart builders of the Customers, Tutors and Forecasts pages (specs inspected, no Streamlit)."""

from __future__ import annotations

from app_streamlit import view_charts
from app_streamlit.charts import TIER_COLORS
from app_streamlit.view_charts import (
    OKABE_ITO,
    contributions_chart,
    forecast_chart,
    forecast_frame,
    gap_frame,
    gap_heatmap,
    score_history_chart,
    tutor_trend_chart,
    tutor_trend_frame,
)


def test_score_history_colours_points_by_tier() -> None:
    rows = [
        {"snapshot_date": "2026-11-28", "risk_score": 40.0, "risk_tier": "medium"},
        {"snapshot_date": "2026-11-29", "risk_score": 80.0, "risk_tier": "critical"},
    ]
    spec = score_history_chart(rows).to_dict()
    line, points = spec["layer"]
    assert points["encoding"]["color"]["field"] == "risk_tier"
    scale = points["encoding"]["color"]["scale"]
    assert (
        dict(zip(scale["domain"], scale["range"], strict=True))["critical"]
        == TIER_COLORS["critical"]
    )
    assert line["mark"]["type"] == "line"


def test_contributions_sorted_largest_first() -> None:
    rows = [
        {"component": "recency", "risk": 1.0, "weight": 30.0, "points": 30.0},
        {"component": "tenure", "risk": 0.1, "weight": 10.0, "points": 1.0},
    ]
    spec = contributions_chart(rows).to_dict()
    assert spec["encoding"]["y"]["sort"] == "-x"
    assert spec["encoding"]["x"]["field"] == "points"


def test_tutor_trend_in_percent_and_skips_missing_days() -> None:
    rows = [
        {
            "performance_date": "2026-11-29",
            "tutor_no_show_rate_30d": 0.1,
            "first_session_success_rate_30d": None,
            "rebooking_rate_30d": 0.5,
        }
    ]
    frame = tutor_trend_frame(rows)
    assert sorted(frame["metric"]) == ["No-show rate", "Rebooking rate"]
    assert sorted(frame["rate"]) == [10.0, 50.0]
    spec = tutor_trend_chart(rows).to_dict()
    assert spec["encoding"]["color"]["scale"]["range"] == list(OKABE_ITO)
    # colour and dash share one legend; disabling the dash legend would hide the colour one too
    assert "legend" not in spec["encoding"]["strokeDash"]


def test_forecast_frame_joins_actuals_and_band() -> None:
    actuals = [{"hour_at": "2026-11-30T10:00:00+00:00", "requested_sessions": 4}]
    forecast = [
        {"hour_at": "2026-11-30T11:00:00+00:00", "yhat": 5.0, "yhat_lower": 2.0, "yhat_upper": 9.0}
    ]
    frame = forecast_frame(actuals, forecast)
    assert list(frame["series"]) == ["Actual requests", "Forecast"]
    assert frame.loc[1, "upper"] == 9.0
    assert frame["lower"].isna().iloc[0]
    spec = forecast_chart(actuals, forecast, "Algebra").to_dict()
    band, lines = spec["layer"]
    assert band["mark"]["type"] == "area"
    assert band["encoding"]["y2"]["field"] == "upper"
    assert lines["encoding"]["color"]["scale"]["range"] == [
        view_charts.ACTUAL_COLOR,
        view_charts.FORECAST_COLOR,
    ]
    assert spec["title"] == "Algebra: demand, last 7 days and next 7 days"
    assert "legend" not in lines["encoding"]["strokeDash"]


def test_forecast_chart_without_actuals() -> None:
    forecast = [
        {"hour_at": "2026-11-30T11:00:00+00:00", "yhat": 5.0, "yhat_lower": 2.0, "yhat_upper": 9.0}
    ]
    frame = forecast_frame([], forecast)
    assert list(frame["series"]) == ["Forecast"]


def test_gap_heatmap_diverges_around_zero() -> None:
    rows = [
        {
            "subject_name": "Algebra",
            "first_hour": "2026-11-30T11:00:00+00:00",
            "hours_ahead": [0, 1, 3],
            "gaps": [3, 1.5, None],
        },
        {
            "subject_name": "Chemistry",
            "first_hour": "2026-11-30T11:00:00+00:00",
            "hours_ahead": [0],
            "gaps": [-2],
        },
    ]
    frame = gap_frame(rows)
    assert list(frame["subject_name"]) == ["Algebra"] * 3 + ["Chemistry"]
    assert [t.isoformat() for t in frame["hour_at"]] == [
        "2026-11-30T11:00:00+00:00",
        "2026-11-30T12:00:00+00:00",
        "2026-11-30T14:00:00+00:00",
        "2026-11-30T11:00:00+00:00",
    ]
    assert frame["forecast_supply_gap"].tolist()[:2] == [3.0, 1.5]
    assert frame["forecast_supply_gap"].isna().tolist() == [False, False, True, False]
    spec = gap_heatmap(rows).to_dict()
    color = spec["encoding"]["color"]
    assert color["field"] == "forecast_supply_gap"
    assert color["scale"] == {"scheme": "blueorange", "domainMid": 0}
    assert spec["encoding"]["y"]["field"] == "subject_name"
    assert spec["mark"]["type"] == "rect"

"""Chart builders of the Customers, Tutors and Forecasts pages: rows in, Altair chart out.

No Streamlit here, so tests inspect the specs directly. Colours come from colour-blind-safe
palettes (Okabe-Ito for categories, Vega's diverging `blueorange` scheme for gaps); the risk tiers
keep the app's tier colours so a tier looks the same on every page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from app_streamlit.charts import OKABE_ITO, TIER_COLORS, TIER_ORDER

ACTUAL_COLOR = OKABE_ITO[0]
FORECAST_COLOR = OKABE_ITO[1]

Rows = Sequence[dict[str, Any]]


def score_history_chart(rows: Rows) -> alt.LayerChart | alt.FacetChart:
    """Daily risk score with points coloured by that day's tier."""
    frame = pd.DataFrame(list(rows), columns=["snapshot_date", "risk_score", "risk_tier"])
    frame["snapshot_date"] = pd.to_datetime(frame["snapshot_date"])
    base = alt.Chart(frame, title="Risk score, last 90 days").encode(
        x=alt.X("snapshot_date:T", title="Day (UTC)"),
        y=alt.Y("risk_score:Q", title="Risk score", scale=alt.Scale(domain=[0, 100])),
    )
    line = base.mark_line(color="#777777")
    points = base.mark_point(filled=True, size=50).encode(
        color=alt.Color(
            "risk_tier:N",
            scale=alt.Scale(domain=list(TIER_ORDER), range=[TIER_COLORS[t] for t in TIER_ORDER]),
            title="Tier",
        ),
        tooltip=[
            alt.Tooltip("snapshot_date:T", title="Day"),
            alt.Tooltip("risk_score:Q", title="Score", format=".1f"),
            alt.Tooltip("risk_tier:N", title="Tier"),
        ],
    )
    return alt.layer(line, points)


def contributions_chart(rows: Rows) -> alt.Chart:
    """Points each component adds to the score, largest first."""
    frame = pd.DataFrame(list(rows), columns=["component", "risk", "weight", "points"])
    return (
        alt.Chart(frame, title="What makes up the score (points)")
        .mark_bar(color=OKABE_ITO[5])
        .encode(
            x=alt.X("points:Q", title="Points"),
            y=alt.Y("component:N", sort="-x", title=None),
            tooltip=[
                alt.Tooltip("component:N", title="Component"),
                alt.Tooltip("risk:Q", title="Risk (0-1)", format=".2f"),
                alt.Tooltip("weight:Q", title="Weight", format=".1f"),
                alt.Tooltip("points:Q", title="Points", format=".1f"),
            ],
        )
    )


def tutor_trend_frame(rows: Rows) -> pd.DataFrame:
    """Long format of the daily 30-day rates, in percent, one row per day and metric."""
    metrics = {
        "tutor_no_show_rate_30d": "No-show rate",
        "first_session_success_rate_30d": "First-session success",
        "rebooking_rate_30d": "Rebooking rate",
    }
    frame = pd.DataFrame(list(rows), columns=["performance_date", *metrics])
    frame["performance_date"] = pd.to_datetime(frame["performance_date"])
    long = frame.melt("performance_date", var_name="metric", value_name="rate").dropna()
    long["metric"] = long["metric"].map(metrics)
    long["rate"] = long["rate"].astype(float) * 100
    return long


def tutor_trend_chart(rows: Rows) -> alt.Chart:
    """No-show, first-session success and rebooking rates (30-day windows) over time."""
    frame = tutor_trend_frame(rows)
    return (
        alt.Chart(frame, title="30-day rates over time (%)")
        .mark_line(point=True)
        .encode(
            x=alt.X("performance_date:T", title="Day (UTC)"),
            y=alt.Y("rate:Q", title="%", scale=alt.Scale(domain=[0, 100])),
            color=alt.Color("metric:N", scale=alt.Scale(range=list(OKABE_ITO)), title=None),
            # Same field as the colour: Vega-Lite merges both into one legend (hiding one hides both).
            strokeDash=alt.StrokeDash("metric:N", title=None),
            tooltip=[
                alt.Tooltip("performance_date:T", title="Day"),
                alt.Tooltip("metric:N", title="Metric"),
                alt.Tooltip("rate:Q", title="%", format=".1f"),
            ],
        )
    )


def success_score_chart(rows: Rows) -> alt.Chart:
    frame = pd.DataFrame(list(rows), columns=["performance_date", "success_score"])
    frame["performance_date"] = pd.to_datetime(frame["performance_date"])
    return (
        alt.Chart(frame, title="Success score (30-day window)")
        .mark_line(point=True, color=OKABE_ITO[0])
        .encode(
            x=alt.X("performance_date:T", title="Day (UTC)"),
            y=alt.Y("success_score:Q", title="Score", scale=alt.Scale(domain=[0, 100])),
            tooltip=[
                alt.Tooltip("performance_date:T", title="Day"),
                alt.Tooltip("success_score:Q", title="Score", format=".1f"),
            ],
        )
    )


def forecast_frame(actuals: Rows, forecast: Rows) -> pd.DataFrame:
    """Actuals and forecast in one frame: series, hour, value and the band (forecast only)."""
    records = [
        ("Actual requests", r["hour_at"], r["requested_sessions"], None, None) for r in actuals
    ] + [("Forecast", r["hour_at"], r["yhat"], r["yhat_lower"], r["yhat_upper"]) for r in forecast]
    frame = pd.DataFrame(records, columns=["series", "hour_at", "value", "lower", "upper"])
    frame["hour_at"] = pd.to_datetime(frame["hour_at"], utc=True)
    for column in ("value", "lower", "upper"):
        frame[column] = pd.to_numeric(frame[column]).astype(float)
    return frame


def forecast_chart(actuals: Rows, forecast: Rows, subject: str) -> alt.LayerChart | alt.FacetChart:
    """Last week's actual requests, then the 7-day forecast with its 95% band (shaded)."""
    frame = forecast_frame(actuals, forecast)
    x = alt.X("hour_at:T", title="Hour (UTC)")
    band = (
        alt.Chart(frame[frame["series"] == "Forecast"])
        .mark_area(opacity=0.25, color=FORECAST_COLOR)
        .encode(x=x, y=alt.Y("lower:Q", title="Sessions requested"), y2="upper:Q")
    )
    lines = (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=x,
            y=alt.Y("value:Q", title="Sessions requested"),
            color=alt.Color(
                "series:N",
                scale=alt.Scale(
                    domain=["Actual requests", "Forecast"], range=[ACTUAL_COLOR, FORECAST_COLOR]
                ),
                title=None,
            ),
            strokeDash=alt.StrokeDash("series:N", title=None),
            tooltip=[
                alt.Tooltip("hour_at:T", title="Hour (UTC)", format="%a %d %b %H:00"),
                alt.Tooltip("series:N", title="Series"),
                alt.Tooltip("value:Q", title="Sessions", format=".1f"),
                alt.Tooltip("lower:Q", title="95% low", format=".1f"),
                alt.Tooltip("upper:Q", title="95% high", format=".1f"),
            ],
        )
    )
    return alt.layer(band, lines, title=f"{subject}: demand, last 7 days and next 7 days")


def gap_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Long format (subject, hour, gap) from `forecasts_data.gaps`' one row per subject
    (vectorized: 7,000 cells at a million customers)."""
    names: list[str] = []
    hours: list[np.ndarray] = []
    gaps: list[float | None] = []
    for row in rows:
        first = pd.Timestamp(row["first_hour"])
        first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
        ahead = np.asarray(row["hours_ahead"], dtype="int64")
        names += [str(row["subject_name"])] * len(ahead)
        hours.append(first.value + ahead * 3_600_000_000_000)
        gaps += list(row["gaps"])
    stamps = np.concatenate(hours) if hours else np.array([], dtype="int64")
    return pd.DataFrame(
        {
            "subject_name": pd.Series(names, dtype=object),
            "hour_at": pd.to_datetime(stamps, unit="ns", utc=True),
            "forecast_supply_gap": pd.Series(gaps, dtype=float),
        }
    )


def gap_heatmap(rows: Sequence[Mapping[str, Any]]) -> alt.Chart:
    """Subject x hour, coloured by forecast requests minus available tutor-hours.

    The diverging scale is centred on zero: orange = short of tutors, blue = spare supply.
    """
    frame = gap_frame(rows)
    return (
        alt.Chart(frame, title="Expected gap: forecast requests - available tutor-hours")
        .mark_rect()
        .encode(
            x=alt.X(
                "yearmonthdatehours(hour_at):O",
                title="Hour (UTC)",
                axis=alt.Axis(format="%a %Hh", labelAngle=-90, labelOverlap=True),
            ),
            y=alt.Y("subject_name:N", title=None),
            color=alt.Color(
                "forecast_supply_gap:Q",
                title="Gap",
                scale=alt.Scale(scheme="blueorange", domainMid=0),
            ),
            tooltip=[
                alt.Tooltip("subject_name:N", title="Subject"),
                alt.Tooltip("hour_at:T", title="Hour (UTC)", format="%a %d %b %H:00"),
                alt.Tooltip("forecast_supply_gap:Q", title="Gap", format="+.1f"),
            ],
        )
    )


def monitoring_chart(rows: Rows, date_field: str, metrics: Sequence[str], title: str) -> alt.Chart:
    """One line per metric over days (long format), Okabe-Ito colours, a tooltip per point."""
    frame = pd.DataFrame(list(rows))
    frame[date_field] = pd.to_datetime(frame[date_field])
    long = frame.melt(id_vars=[date_field], value_vars=list(metrics), var_name="metric")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    return (
        alt.Chart(long, title=title)
        .mark_line(point=True)
        .encode(
            x=alt.X(f"{date_field}:T", title="Day (UTC)"),
            y=alt.Y("value:Q", title=None),
            color=alt.Color(
                "metric:N",
                scale=alt.Scale(domain=list(metrics), range=list(OKABE_ITO[: len(metrics)])),
                title=None,
                legend=alt.Legend(orient="bottom"),
            ),
            tooltip=[
                alt.Tooltip(f"{date_field}:T", title="Day"),
                alt.Tooltip("metric:N", title="Metric"),
                alt.Tooltip("value:Q", title="Value", format=".3f"),
            ],
        )
        .properties(height=260)
    )


def effectiveness_chart(rows: Rows) -> alt.Chart:
    """Share of customers who booked again within 14 days, per week, accepted vs dismissed."""
    frame = pd.DataFrame(list(rows))
    frame["week_start_date"] = pd.to_datetime(frame["week_start_date"])
    frame["rebooked_share"] = pd.to_numeric(frame["rebooked_share"], errors="coerce")
    grouped = (
        frame.groupby(["week_start_date", "outcome"], as_index=False)[
            ["customers_measured", "customers_rebooked"]
        ]
        .sum()
        .assign(
            share=lambda f: (
                f["customers_rebooked"] / f["customers_measured"].where(f["customers_measured"] > 0)
            )
        )
    )
    outcomes = ["accepted", "dismissed"]
    return (
        alt.Chart(grouped, title="Customers who booked again within 14 days")
        .mark_line(point=True)
        .encode(
            x=alt.X("week_start_date:T", title="Week of the decision"),
            y=alt.Y("share:Q", title="Booked again", axis=alt.Axis(format="%")),
            color=alt.Color(
                "outcome:N",
                scale=alt.Scale(domain=outcomes, range=[OKABE_ITO[2], OKABE_ITO[5]]),
                title="Recommendation",
                legend=alt.Legend(orient="bottom"),
            ),
            tooltip=[
                alt.Tooltip("week_start_date:T", title="Week"),
                alt.Tooltip("outcome:N", title="Decision"),
                alt.Tooltip("share:Q", title="Booked again", format=".0%"),
                alt.Tooltip("customers_measured:Q", title="Customers measured"),
            ],
        )
        .properties(height=280)
    )

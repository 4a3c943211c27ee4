"""Calendar regressors for hourly demand: US public holidays and the school calendar.

Tutoring demand follows the school year. The `holidays` package gives the public holidays;
US school breaks are not in it, so they are approximated the way most districts set them
(summer from mid-June to late August, winter break around New Year, Thanksgiving week,
a spring-break week in late March). Callers with a real district calendar pass their own
frame instead; every column other than `ds` is used as a regressor.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

REGRESSORS = ("is_holiday", "is_school_break")


def us_holidays(start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Prophet's holiday frame (`holiday`, `ds` at midnight) for US public holidays."""
    import holidays

    years = range(start.year, end.year + 1)
    rows = [
        {"holiday": name, "ds": pd.Timestamp(day)}
        for day, name in sorted(holidays.US(years=years).items())
    ]
    return pd.DataFrame(rows, columns=["holiday", "ds"])


def school_break(days: pd.DatetimeIndex) -> np.ndarray:
    """True on the days most US schools are closed for a break (not weekends)."""
    month, dom = days.month.to_numpy(), days.day.to_numpy()
    summer = ((month == 6) & (dom >= 15)) | (month == 7) | ((month == 8) & (dom <= 25))
    winter = ((month == 12) & (dom >= 21)) | ((month == 1) & (dom <= 2))
    spring = (month == 3) & (dom >= 23) & (dom <= 31)
    thanksgiving = np.zeros(len(days), dtype=bool)
    for year in np.unique(days.year):
        day = _thanksgiving(int(year))
        week = pd.date_range(pd.Timestamp(day) - pd.Timedelta(days=3), periods=5, freq="D")
        thanksgiving |= days.normalize().isin(week)
    return summer | winter | spring | thanksgiving


def regressors(ds: pd.Series | pd.DatetimeIndex) -> pd.DataFrame:
    """Hourly regressor frame (`ds`, `is_holiday`, `is_school_break`) as 0/1 floats."""
    index = pd.DatetimeIndex(ds)
    if len(index) == 0:
        return pd.DataFrame({"ds": index, **{name: [] for name in REGRESSORS}})
    days = index.normalize()
    holiday_days = pd.DatetimeIndex(us_holidays(days.min(), days.max())["ds"])
    return pd.DataFrame(
        {
            "ds": index,
            "is_holiday": days.isin(holiday_days).astype(float),
            "is_school_break": school_break(days).astype(float),
        }
    )


def _thanksgiving(year: int) -> date:
    """Fourth Thursday of November."""
    first = date(year, 11, 1)
    offset = (3 - first.weekday()) % 7
    return date(year, 11, 1 + offset + 21)

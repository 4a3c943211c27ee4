"""The forecasting library on small synthetic hourly series (no database, no Dagster)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.forecasting import backtest, forecast, forecast_run
from ml.forecasting.backtest import in_sample_scale, metrics, run_backtest
from ml.forecasting.frames import regularise
from ml.forecasting.intervals import covered
from ml.forecasting.models import (
    DAY_HOUR_PROFILE,
    SEASONAL_NAIVE,
    WINDOW_AVERAGE,
    Candidate,
)

START = pd.Timestamp("2026-03-02")  # a Monday


def seasonal_series(uid: str, weeks: int, seed: int = 3, scale: float = 20.0) -> pd.DataFrame:
    """Counts with an afternoon peak, quieter weekends and Poisson noise."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(START, periods=weeks * 168, freq="h")
    daily = np.clip(np.sin((ds.hour.to_numpy() - 6) / 24 * 2 * np.pi), 0, None)
    weekly = np.where(ds.dayofweek >= 5, 0.5, 1.0)
    y = rng.poisson(scale * daily * weekly + 0.5).astype(float)
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": y})


def test_regularise_fills_missing_hours_with_zero_and_sums_duplicates() -> None:
    raw = pd.DataFrame(
        {
            "unique_id": [1, 1, 1],
            "ds": ["2026-03-02 00:10", "2026-03-02 00:40", "2026-03-02 03:00"],
            "y": [1, 2, 5],
        }
    )
    out = regularise(raw)
    assert out["ds"].tolist() == list(pd.date_range("2026-03-02", periods=4, freq="h"))
    assert out["y"].tolist() == [3.0, 0.0, 0.0, 5.0]
    assert out["unique_id"].unique().tolist() == ["1"]


def test_regularise_rejects_a_frame_without_y() -> None:
    with pytest.raises(ValueError, match="missing"):
        regularise(pd.DataFrame({"unique_id": ["a"], "ds": [START]}))


def test_backtest_never_trains_on_hours_after_its_origin() -> None:
    seen: list[tuple[pd.Timestamp, pd.Timestamp]] = []

    def spy(train: pd.DataFrame, horizon: int, _: pd.DataFrame | None) -> pd.DataFrame:
        out = SEASONAL_NAIVE.fit_predict(train, horizon, None)
        seen.append((train["ds"].max(), out["ds"].min()))
        return out

    history = regularise(seasonal_series("a", weeks=7))
    result = run_backtest(history, [Candidate("spy", spy)], n_origins=4)
    assert len(result.origins) == 4
    assert np.diff(result.origins).tolist() == [pd.Timedelta(hours=168)] * 3
    assert result.origins[-1] + pd.Timedelta(hours=167) == history["ds"].max()
    assert len(seen) == 4
    for (last_trained, first_predicted), origin in zip(seen, result.origins, strict=True):
        assert last_trained < origin
        assert first_predicted == origin
    errors = result.errors
    assert (errors["ds"] >= errors["origin"]).all()
    assert (errors["ds"] < errors["origin"] + pd.Timedelta(hours=168)).all()
    assert errors.groupby("origin").size().tolist() == [168] * 4


def test_mase_is_scaled_by_the_in_sample_seasonal_naive() -> None:
    ds = pd.date_range(START, periods=336, freq="h")
    y = np.r_[np.zeros(168), np.full(168, 2.0)]  # week-over-week change of 2 every hour
    scale = in_sample_scale(pd.DataFrame({"unique_id": "a", "ds": ds, "y": y}))
    assert scale["a"] == pytest.approx(2.0)


def test_coverage_counts_hours_inside_the_band_bounds_included() -> None:
    y = pd.Series([0.0, 5.0, 10.0, 3.0])
    inside = covered(y, pd.Series([0.0, 6.0, 0.0, np.nan]), pd.Series([1.0, 9.0, 10.0, 4.0]))
    assert inside.tolist()[:3] == [1.0, 0.0, 1.0]
    assert np.isnan(inside.iloc[3])
    errors = pd.DataFrame(
        {
            "unique_id": "a",
            "model": "m",
            "origin": START,
            "fold": 1,
            "ds": pd.date_range(START, periods=4, freq="h"),
            "step": [1, 2, 3, 4],
            "y": [1.0, 2.0, 3.0, 4.0],
            "yhat": [1.0, 1.0, 1.0, 1.0],
            "yhat_lower": [0.0, 0.0, 0.0, 0.0],
            "yhat_upper": [2.0, 2.0, 2.0, 2.0],
            "scale": 2.0,
            "level": 1.0,
        }
    )
    row = metrics(errors).iloc[0]
    assert row["native_coverage"] == pytest.approx(0.5)
    assert row["mae"] == pytest.approx(1.5)
    assert row["mase"] == pytest.approx(0.75)
    assert row["wmape"] == pytest.approx(6 / 10)


def test_a_three_day_series_gets_the_flagged_fallback() -> None:
    short = seasonal_series("new", weeks=1).head(72)
    out = forecast(short, horizon_hours=168, candidates=[SEASONAL_NAIVE, DAY_HOUR_PROFILE])
    assert len(out) == 168
    assert out["is_fallback"].all()
    assert out["model"].str.startswith("fallback").all()
    assert (out["yhat_lower"] >= 0).all()
    assert (out["yhat_lower"] <= out["yhat"]).all()
    assert (out["yhat"] <= out["yhat_upper"]).all()
    assert (out["yhat_upper"] > out["yhat_lower"]).any()


def test_six_weeks_of_history_is_enough_for_the_full_backtest() -> None:
    out = forecast(seasonal_series("a", weeks=6), candidates=[SEASONAL_NAIVE, WINDOW_AVERAGE])
    assert len(out) == 168
    assert not out["is_fallback"].any()
    assert set(out["model"]) <= {"seasonal_naive", "window_average"}


def test_a_prophet_failure_falls_back_to_the_next_best_model() -> None:
    """A 'prophet' that wins the backtest (it knows the future) but fails when refitted on
    all history: the series is served by the next best model, flagged, never left empty."""
    history = seasonal_series("a", weeks=9)
    truth = history.set_index("ds")["y"]
    newest = history["ds"].max()

    def oracle_then_crash(
        train: pd.DataFrame, horizon: int, _: pd.DataFrame | None
    ) -> pd.DataFrame:
        if train["ds"].max() >= newest:
            raise RuntimeError("Stan optimisation failed")
        ds = pd.date_range(train["ds"].max() + pd.Timedelta(hours=1), periods=horizon, freq="h")
        y = truth.reindex(ds).to_numpy()
        return pd.DataFrame(
            {"unique_id": "a", "ds": ds, "yhat": y, "yhat_lower": y - 1, "yhat_upper": y + 1}
        )

    candidates = [SEASONAL_NAIVE, WINDOW_AVERAGE, Candidate("prophet", oracle_then_crash, True)]
    run = forecast_run(history, candidates=candidates, slow_budget_seconds=60)
    assert run.ranking.set_index("model").loc["prophet", "rank"] == 1
    choice = run.choices.iloc[0]
    assert choice["model"] == "window_average"
    assert choice["rank"] == 2
    assert bool(choice["is_fallback"])
    assert len(run.forecast) == 168
    assert (run.forecast["model"] == "window_average").all()
    assert run.forecast["is_fallback"].all()


def test_a_model_that_always_fails_is_never_served() -> None:
    def broken(train: pd.DataFrame, horizon: int, _: pd.DataFrame | None) -> pd.DataFrame:
        raise RuntimeError("boom")

    history = seasonal_series("a", weeks=9)
    run = forecast_run(history, candidates=[SEASONAL_NAIVE, Candidate("prophet", broken, True)])
    assert set(run.forecast["model"]) == {"seasonal_naive"}
    assert not run.forecast["is_fallback"].any()


def test_served_forecast_beats_seasonal_naive_with_calibrated_intervals() -> None:
    """Daily + weekly seasonality and noise: averaging the weeks beats repeating the last
    one on the held-out week, and the 95% band covers about 95% of its hours."""
    full = pd.concat([seasonal_series(f"s{i}", weeks=11, seed=i) for i in range(3)])
    cutoff = full["ds"].max() - pd.Timedelta(hours=167)
    train, held_out = full[full["ds"] < cutoff], full[full["ds"] >= cutoff]
    out = forecast(train, candidates=[SEASONAL_NAIVE, WINDOW_AVERAGE, DAY_HOUR_PROFILE])
    joined = out.merge(held_out, on=["unique_id", "ds"])
    assert len(joined) == 3 * 168
    last_week = train.groupby("unique_id").tail(168)
    naive = last_week.assign(ds=last_week["ds"] + pd.Timedelta(hours=168))
    joined = joined.merge(naive.rename(columns={"y": "naive"}), on=["unique_id", "ds"])
    for _, part in joined.groupby("unique_id"):
        served_mae = (part["y"] - part["yhat"]).abs().mean()
        naive_mae = (part["y"] - part["naive"]).abs().mean()
        assert served_mae < naive_mae
    assert set(out["model"]) != {"seasonal_naive"}
    coverage = covered(joined["y"], joined["yhat_lower"], joined["yhat_upper"]).mean()
    assert 0.88 <= coverage <= 0.99


def test_each_series_is_backtested_and_forecast_from_its_own_end() -> None:
    """Series that stop at different hours: no series trains past its own origins, and each
    forecast starts the hour after that series' last observation."""
    seen: list[tuple[str, pd.Timestamp, pd.Timestamp]] = []

    def spy(train: pd.DataFrame, horizon: int, _: pd.DataFrame | None) -> pd.DataFrame:
        out = SEASONAL_NAIVE.fit_predict(train, horizon, None)
        for uid, part in train.groupby("unique_id"):
            first = out.loc[out["unique_id"] == uid, "ds"].min()
            seen.append((str(uid), part["ds"].max(), first))
        return out

    early = seasonal_series("early", weeks=9, seed=1).iloc[:-30]
    late = seasonal_series("late", weeks=9, seed=2)
    history = pd.concat([early, late])
    run = forecast_run(history, candidates=[Candidate("seasonal_naive", spy), WINDOW_AVERAGE])
    errors = run.backtest.errors if run.backtest is not None else pd.DataFrame()
    origins = errors.groupby("unique_id")["origin"].max()
    assert origins["late"] - origins["early"] == pd.Timedelta(hours=30)
    assert all(last < first for _, last, first in seen)
    starts = run.forecast.groupby("unique_id")["ds"].min()
    assert starts["early"] == early["ds"].max() + pd.Timedelta(hours=1)
    assert starts["late"] == late["ds"].max() + pd.Timedelta(hours=1)
    assert run.forecast.groupby("unique_id").size().tolist() == [168, 168]


def test_backtest_table_has_every_model_at_every_origin() -> None:
    history = seasonal_series("a", weeks=9)
    table = backtest(history, candidates=[SEASONAL_NAIVE, WINDOW_AVERAGE, DAY_HOUR_PROFILE])
    counts = table.groupby("model")["origin"].nunique().to_dict()
    assert counts == {"seasonal_naive": 4, "window_average": 4, "day_hour_profile": 4}
    assert table["mase"].notna().all()
    assert table["coverage"].between(0, 1).all()


def test_monitoring_flags_a_series_after_three_bad_days_in_a_row() -> None:
    from ml.forecasting.monitoring import degraded

    days = pd.date_range("2026-03-01", periods=4, freq="D").date
    rows = pd.DataFrame(
        {
            "unique_id": ["bad"] * 4 + ["ok"] * 4 + ["gap"] * 3,
            "monitored_date": [*days, *days, days[0], days[2], days[3]],
            "mase": [0.9, 1.3, 1.5, 1.25, 1.3, 0.8, 1.4, 1.5, 1.3, 1.3, 1.3],
        }
    )
    assert degraded(rows) == ["bad"]
    assert degraded(rows, threshold=1.6) == []


def test_daily_accuracy_measures_a_drop_in_accuracy() -> None:
    from ml.forecasting.monitoring import daily_accuracy

    history = seasonal_series("a", weeks=5)
    day = history["ds"].max() - pd.Timedelta(hours=23)
    before, actual = history[history["ds"] < day], history[history["ds"] >= day]
    good = actual.rename(columns={"y": "yhat"}).assign(
        yhat_lower=lambda f: f["yhat"] - 1, yhat_upper=lambda f: f["yhat"] + 1, model="m"
    )
    bad = good.assign(yhat=good["yhat"] + 30, yhat_lower=100.0, yhat_upper=101.0)
    ok_row = daily_accuracy(good, actual, before, day.date()).iloc[0]
    bad_row = daily_accuracy(bad, actual, before, day.date()).iloc[0]
    assert ok_row["mase"] == 0
    assert ok_row["coverage"] == 1.0
    assert ok_row["hours"] == 24
    assert bad_row["mase"] > 1.2
    assert bad_row["coverage"] == 0.0

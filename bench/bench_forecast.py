"""Demand forecasting benchmark on the simulator's data at default scale: hourly requested
sessions per subject (cancelled requests excluded, as in marts.supply_demand_hourly), the
last week held out. Times the whole backtest + forecast of every subject with the library's
public entry point and scores the served forecast on the held-out week, the way an unseen
series would be judged.

    .venv/bin/python -m bench.bench_forecast [--scale 100000] [--days 90] [--seed 42]

Targets: under 60 s; the served model beats the 168-h seasonal naive on every subject;
95% intervals cover 0.90-0.98 of the held-out hours.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from ml.forecasting import forecast_run
from ml.forecasting.intervals import covered
from ml.forecasting.pipeline import served_summary
from simulator.history import simulate
from simulator.model import DAY, HOUR

TARGET_SECONDS = 60
WEEK = 168


def hourly_demand(scale: int, days: int, seed: int) -> pd.DataFrame:
    """(unique_id, ds, y): non-cancelled session requests per subject per start hour."""
    end = int(time.time()) // HOUR * HOUR
    history = simulate(seed, scale, days + 8, end)
    requests = history.tables["session_requests"]
    status = requests["status"]
    keep = np.asarray(status.codes) != status.vocab.index("cancelled")
    start_at = requests["requested_start_at"][keep]
    subject = requests["subject_id"][keep]
    inside = (start_at >= end - (days + 7) * DAY) & (start_at < end)
    frame = pd.DataFrame(
        {"unique_id": subject[inside].astype(str), "hour": start_at[inside] // HOUR * HOUR}
    )
    counts = frame.groupby(["unique_id", "hour"]).size().rename("y").reset_index()
    grid = pd.MultiIndex.from_product(
        [sorted(counts["unique_id"].unique()), np.arange(end - (days + 7) * DAY, end, HOUR)],
        names=["unique_id", "hour"],
    )
    full = counts.set_index(["unique_id", "hour"]).reindex(grid, fill_value=0).reset_index()
    full["ds"] = pd.to_datetime(full["hour"], unit="s")
    return full[["unique_id", "ds", "y"]].astype({"y": float})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--prophet-budget", type=float, default=20.0)
    args = parser.parse_args()
    started = time.monotonic()
    demand = hourly_demand(args.scale, args.days, args.seed)
    print(
        f"simulated {demand['unique_id'].nunique()} subjects in {time.monotonic() - started:.1f} s"
    )
    cutoff = demand["ds"].max() - pd.Timedelta(hours=WEEK - 1)
    train, held_out = demand[demand["ds"] < cutoff], demand[demand["ds"] >= cutoff]

    started, cpu = time.monotonic(), time.process_time()
    run = forecast_run(train, slow_budget_seconds=args.prophet_budget)
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    verdict = "OK" if seconds < TARGET_SECONDS else "SLOW"
    print(
        f"backtest + forecast, all subjects: {seconds:.1f} s wall, {cpu:.1f} s CPU"
        f" (target < {TARGET_SECONDS} s wall) {verdict}; includes importing statsforecast"
        " and Prophet"
    )
    if run.backtest is not None:
        print(f"  per model: {run.backtest.seconds}")
        print(
            f"  prophet skipped (budget): {len(run.backtest.skipped.get('prophet', []))} subjects"
        )

    last_week = train.groupby("unique_id").tail(WEEK)
    naive = last_week.assign(ds=last_week["ds"] + pd.Timedelta(hours=WEEK))
    joined = run.forecast.merge(held_out, on=["unique_id", "ds"]).merge(
        naive.rename(columns={"y": "naive"}), on=["unique_id", "ds"]
    )
    joined["inside"] = covered(joined["y"], joined["yhat_lower"], joined["yhat_upper"])
    joined["error"] = (joined["y"] - joined["yhat"]).abs()
    joined["naive_error"] = (joined["y"] - joined["naive"]).abs()
    per_subject = joined.groupby("unique_id").agg(
        model=("model", "first"),
        mae=("error", "mean"),
        naive_mae=("naive_error", "mean"),
        coverage=("inside", "mean"),
    )
    per_subject["relative_mae"] = per_subject["mae"] / per_subject["naive_mae"]
    backtest_mase = run.choices.set_index("unique_id")["mase"]
    per_subject["backtest_mase"] = backtest_mase.reindex(per_subject.index)
    order = sorted(per_subject.index, key=int)
    print("subject  served model       backtest MASE  held-out MAE / naive MAE  coverage")
    for uid in order:
        row = per_subject.loc[uid]
        print(
            f"{uid:>7}  {row['model']:<17}  {row['backtest_mase']:>13.3f}"
            f"  {row['relative_mae']:>24.3f}  {row['coverage']:>8.3f}"
        )
    summary = served_summary(run.ranking, run.choices)
    print(f"served models: {run.choices['model'].value_counts().to_dict()}")
    print(
        f"backtest: mean MASE {summary['mean_mase']}, share beating seasonal naive"
        f" {summary['share_beating_naive']}, 95% coverage {summary['mean_coverage']}"
    )
    beats = float((per_subject["mae"] < per_subject["naive_mae"]).mean())
    coverage = float(joined["inside"].mean())
    band = "OK" if 0.90 <= coverage <= 0.98 else "OUT OF BAND"
    print(
        f"held-out week: share beating seasonal naive {beats:.3f},"
        f" mean MAE / naive MAE {per_subject['relative_mae'].mean():.3f},"
        f" 95% coverage {coverage:.3f} (target 0.90-0.98) {band}"
    )


if __name__ == "__main__":
    main()

"""Which model serves each series: the lowest mean backtest MASE over the origins wins; the
rest stay in order as the fallbacks if the winner fails when refitted on all history."""

from __future__ import annotations

import pandas as pd

from ml.forecasting.backtest import summary


def rank_models(metrics: pd.DataFrame, n_origins: int) -> pd.DataFrame:
    """Per series, the models that produced a forecast at every origin, best first:
    unique_id, model, mase, coverage, native_coverage, rank (1 = serves)."""
    table = summary(metrics)
    table = table[(table["origins"] == n_origins) & table["mase"].notna()]
    table = table.sort_values(["unique_id", "mase", "model"], kind="stable", ignore_index=True)
    table["rank"] = table.groupby("unique_id").cumcount() + 1
    return table[["unique_id", "model", "mase", "coverage", "native_coverage", "rank"]]


def rankings(ranked: pd.DataFrame) -> dict[str, list[str]]:
    """Series id -> model names, best first."""
    return {
        str(uid): part.sort_values("rank")["model"].tolist()
        for uid, part in ranked.groupby("unique_id", sort=True)
    }

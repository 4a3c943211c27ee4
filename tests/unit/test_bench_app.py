"""The app benchmark's figures: percentiles and the verdicts printed beside them."""

from __future__ import annotations

import math

from bench.bench_app import MODES, Samples, percentile, query_table, rerun_table, verdict


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100, shuffled order must not matter
    assert percentile(list(reversed(values)), 50) == 50.5
    assert percentile(values, 95) == 95.05
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 95))


def test_rerun_table_flags_missed_targets_and_stuck_sessions() -> None:
    fast = Samples(ms=[100.0] * 19 + [250.0])
    slow = Samples(ms=[100.0] * 10 + [900.0] * 10, stuck=2, errors=1)
    table = rerun_table(
        ["Overview", "Forecasts"],
        {
            "postgres": {"Overview": slow, "Forecasts": Samples()},
            "redis": {"Overview": fast, "Forecasts": fast},
        },
    )
    overview = next(line for line in table.splitlines() if line.startswith("Overview"))
    assert "2/1" in overview  # stuck/errors
    assert overview.endswith("pg MISSED, redis ok")
    forecasts = next(line for line in table.splitlines() if line.startswith("Forecasts"))
    assert "pg no data" in forecasts


def test_query_table_judges_redis_against_50_ms() -> None:
    results = {m: {"q": Samples(ms=[10.0, 20.0, 80.0 if m == "redis" else 5.0])} for m in MODES}
    (line,) = [row for row in query_table(results).splitlines() if row.startswith("q ")]
    assert line.endswith("MISSED")
    assert verdict(49.0, 50.0) == "ok"

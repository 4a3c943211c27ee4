"""The churn benchmark's quality table: the figures an ops manager reads against the
simulator's ground truth, printed from stored scores."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bench.bench_churn import main, print_quality


def test_the_quality_table_reports_ranking_threshold_calibration_and_deciles(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = np.random.default_rng(0)
    proba = rng.random(1000)
    actual = (rng.random(1000) < proba).astype("int64")  # calibrated by construction
    print_quality(list(range(1000)), proba, actual, threshold=0.8)
    out = capsys.readouterr().out
    figures = {
        m["name"]: float(m["value"])
        for m in re.finditer(r"^  (?P<name>\w[\w -]*?) +(?P<value>-?\d+\.\d{4})\b", out, re.M)
    }
    flagged = proba >= 0.8
    assert figures["recall at threshold"] == pytest.approx(
        actual[flagged].sum() / actual.sum(), abs=1e-4
    )
    assert figures["precision at threshold"] == pytest.approx(actual[flagged].mean(), abs=1e-4)
    assert figures["Brier"] < actual.mean() * (1 - actual.mean())  # beats the base rate
    assert 0.7 < figures["ROC-AUC"] < 0.9
    deciles = [line for line in out.splitlines() if "observed" in line]
    assert len(deciles) == 10
    riskiest = float(deciles[-1].split("observed")[1])
    safest = float(deciles[0].split("observed")[1])
    assert riskiest > safest + 0.5


def test_quality_only_needs_a_stack_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["bench_churn", "--quality-only"])
    with pytest.raises(SystemExit, match="2"):
        main()

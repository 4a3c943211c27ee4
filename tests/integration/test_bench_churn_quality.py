"""`bench_churn --reuse <home> --quality-only`: a stack's newest stored churn scores judged
against the simulator's ground truth, at the threshold the scoring version was registered
with, with nothing trained or scored."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from bench.bench_churn import quality_only
from ml.registry import MODEL_NAME

pytestmark = pytest.mark.integration


def test_quality_only_reads_the_newest_scores_and_the_registered_threshold(
    warehouse_url: str, source_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient

    tracking_uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    client.create_registered_model(MODEL_NAME)
    version = client.create_model_version(MODEL_NAME, source=str(tmp_path)).version
    client.set_model_version_tag(MODEL_NAME, version, "threshold", "0.6")
    newest, older = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    with psycopg.connect(warehouse_url) as conn:
        conn.cursor().executemany(
            "insert into ml.churn_scores (customer_id, scored_at, churn_probability,"
            " model_name, model_version) values (%s, %s, %s, %s, %s)",
            # customers 1-100 scored i/100; an older run scored everyone the other way round
            [(i, newest, i / 100, MODEL_NAME, str(version)) for i in range(1, 101)]
            + [(i, older, 1 - i / 100, MODEL_NAME, str(version)) for i in range(1, 101)],
        )
    with psycopg.connect(source_url) as conn:
        # the riskiest 40 churned, and one in ten of the others
        conn.cursor().executemany(
            "insert into truth.customer_outcomes (customer_id, churned) values (%s, %s)",
            [(i, i > 60 or i % 10 == 0) for i in range(1, 101)],
        )
    home = tmp_path / "home"
    home.mkdir()
    (home / ".env").write_text(
        f"WAREHOUSE_URL={warehouse_url}\nSOURCE_URL={source_url}\n"
        f"MLFLOW_TRACKING_URI={tracking_uri}\n"
    )

    quality_only(home)

    out = capsys.readouterr().out
    figures = {
        m["name"]: float(m["value"])
        for m in re.finditer(r"^  (?P<name>\w[\w -]*?) +(?P<value>-?\d+\.\d{4})\b", out, re.M)
    }
    assert "threshold 0.600" in out
    # flagged at 0.6: customers 60-100 (41), every one a churner; 46 churned in all
    assert figures["flagged"] == pytest.approx(0.41)
    assert figures["precision at threshold"] == pytest.approx(1.0)
    assert figures["recall at threshold"] == pytest.approx(41 / 46, abs=1e-4)
    assert figures["ROC-AUC"] > 0.9  # the newest run, not the older reversed one
    deciles = re.findall(r"observed (\d\.\d{3})", out)
    assert [float(d) for d in deciles[-4:]] == [1.0, 1.0, 1.0, 1.0]

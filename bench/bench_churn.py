"""Churn benchmark on simulated data: weekly training and daily scoring timed at scale, the
scores judged against the simulator's ground truth (truth.customer_outcomes).

    .venv/bin/python -m bench.bench_churn [--scale 100000] [--scale 1000000] [--days 180]

Steps: simulate, ingest, `dbt run` of the relations `ml.features` reads, then the library's
own use cases (`ml.jobs.train_and_register`, `ml.jobs.score_active_customers`) against an
MLflow registry in a temporary SQLite store. Frames are built with pandas from a COPY of the
feature query (the SQL does the aggregation; Python only parses one row per customer). The
benchmark times that parse with pandas and with polars (then handed to pandas, which sklearn
and shap take) on the same COPY output, so the choice is measured at every scale.

`make bench` runs it at $SCALE and at S10 ($SCALE_S10, default 1,000,000 customers).

Targets: scoring every active customer with three plain-word factors under 60 s at S10
(1,000,000 customers); weekly training under 5 minutes. Against the ground truth: ROC-AUC
above the marts' rule-based risk score, Brier below always predicting the base rate.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from datetime import UTC, datetime

import numpy as np
import psycopg

from bench.bench_dbt import dbt_build, ingest
from bench.common import migrate, opsdash, scratch_database, timed
from ml.features import DBT_MODELS

SCORING_TARGET_S = 60
TRAINING_TARGET_S = 300


def frame_builders(conn: psycopg.Connection, as_of: datetime) -> dict[str, float]:
    """Seconds to run the feature query into a COPY buffer, then to parse that buffer into a
    pandas frame with pandas' C reader and with polars (multi-threaded) plus `.to_pandas()`."""
    import pandas as pd
    import polars as pl

    from ml.features import CLOSED_STATUSES, FEATURES_SQL

    params = {"as_of": as_of, "closed_statuses": list(CLOSED_STATUSES)}
    buffer = io.BytesIO()
    started = time.monotonic()
    with (
        conn.cursor() as cur,
        cur.copy(
            "copy (" + FEATURES_SQL + ") to stdout with (format csv, header true)", params
        ) as copy,
    ):
        for block in copy:
            buffer.write(block)
    seconds = {"query_and_copy": time.monotonic() - started}
    raw = buffer.getvalue()
    seconds["pandas"], _ = timed(lambda: pd.read_csv(io.BytesIO(raw)), repeat=3)
    seconds["polars"], _ = timed(lambda: pl.read_csv(io.BytesIO(raw)).to_pandas(), repeat=3)
    return seconds


def run_scale(scale: int, days: int) -> None:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    from ml.churn_metrics import churn_rate_by_decile
    from ml.jobs import monitor_churn, score_active_customers, train_and_register

    with (
        scratch_database("churn_src") as source_url,
        scratch_database("churn_wh") as warehouse_url,
        tempfile.TemporaryDirectory(prefix="bench_churn_") as tmp,
    ):
        print(f"[bench_churn] scale {scale:,}: simulating {days} days", flush=True)
        opsdash(
            ["sim", "generate", "--scale", str(scale), "--days", str(days)],
            {"SOURCE_URL": source_url},
        )
        migrate(warehouse_url)
        ingest(warehouse_url, source_url)
        dbt_build(warehouse_url, ["--select", *DBT_MODELS, "--resource-type", "model"])
        tracking_uri = f"sqlite:///{tmp}/mlflow.db"
        # MLflow's local artifact store goes to ./mlruns: keep it in the temporary folder.
        with contextlib.chdir(tmp), psycopg.connect(warehouse_url) as conn:
            started = time.monotonic()
            trained = train_and_register(conn, tracking_uri)
            training_s = time.monotonic() - started
            scored_at = datetime.now(UTC).replace(microsecond=0)
            started = time.monotonic()
            scored = score_active_customers(conn, tracking_uri, scored_at)
            conn.commit()
            scoring_s = time.monotonic() - started
            rows = conn.execute(
                "select customer_id, churn_probability from ml.churn_scores where scored_at = %s",
                (scored_at,),
            ).fetchall()
            riskiest = conn.execute(
                "select top_factors from ml.churn_scores where scored_at = %s"
                " order by churn_probability desc, customer_id limit 1",
                (scored_at,),
            ).fetchone()
            builders = frame_builders(conn, scored_at)
            started = time.monotonic()
            monitored = monitor_churn(conn, tracking_uri, scored_at)
            conn.commit()
            monitoring_s = time.monotonic() - started
        with psycopg.connect(source_url) as conn:
            truth: dict[int, bool] = dict(
                conn.execute("select customer_id, churned from truth.customer_outcomes").fetchall()
            )
    ids = [r[0] for r in rows]
    proba = np.array([r[1] for r in rows], dtype="float64")
    actual = np.array([bool(truth.get(i, False)) for i in ids], dtype="int64")
    flagged = proba >= scored.threshold
    hits = int((flagged & (actual == 1)).sum())
    base = actual.mean()
    e = trained.evaluation
    print(f"\n== churn at scale {scale:,} customers ==")
    print(
        f"weekly training                {training_s:8.1f} s   target < {TRAINING_TARGET_S} s  "
        f"({trained.kind}, {trained.rows:,} rows, alias {trained.registration.alias})"
    )
    print(
        f"scoring + 3 plain-word factors {scoring_s:8.1f} s   target < {SCORING_TARGET_S} s at "
        f"S10  ({scored.rows:,} customers; {scored.seconds})"
    )
    print(
        f"out-of-time holdout: ROC-AUC {e.roc_auc:.3f}  PR-AUC {e.pr_auc:.3f}  "
        f"recall {e.recall:.3f} / precision {e.precision:.3f} at {e.threshold:.3f}  "
        f"Brier {e.brier:.4f} (base rate {e.brier_base_rate:.4f})"
    )
    print(
        f"daily monitoring (PSI of {len(monitored.drift)} features) {monitoring_s:5.1f} s   "
        f"drifted: {', '.join(monitored.drifted) or 'none'}"
    )
    if riskiest:
        words = "; ".join(f"{f['reason']} ({f['action'] or 'no action'})" for f in riskiest[0])
        print(f"riskiest customer's factors: {words}")
    faster = "polars" if builders["polars"] < builders["pandas"] else "pandas"
    print(
        f"feature frame: query + COPY {builders['query_and_copy']:.1f} s, then parse "
        f"{builders['pandas']:.2f} s with pandas vs {builders['polars']:.2f} s with polars "
        f"(+ to_pandas); {faster} parses faster, ml.features uses pandas"
    )
    print(f"gradient boosting vs logistic regression: {trained.vs_challenger_family}")
    print(f"scores vs ground truth ({len(ids):,} active customers, churn rate {base:.3f}):")
    print(
        f"  ROC-AUC {roc_auc_score(actual, proba):.3f}  PR-AUC "
        f"{average_precision_score(actual, proba):.3f}  recall at threshold "
        f"{hits / max(int(actual.sum()), 1):.3f}  flagged {flagged.mean():.1%}  Brier "
        f"{brier_score_loss(actual, proba):.4f} (base rate {base * (1 - base):.4f})"
    )
    print("  churn rate by decile of score (10 = riskiest):")
    for row in churn_rate_by_decile(actual, proba).itertuples():
        print(
            f"    {row.decile:>2}  {row.rows:>9,} customers  predicted {row.mean_predicted:.3f}"
            f"  observed {row.observed_rate:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--scale", action="append", type=int, help="customers; repeatable")
    parser.add_argument("--days", type=int, default=180)
    args = parser.parse_args()
    for scale in args.scale or [100_000]:
        run_scale(scale, args.days)


if __name__ == "__main__":
    main()

"""Churn benchmark on simulated data: weekly training and daily scoring timed at scale, the
scores judged against the simulator's ground truth (truth.customer_outcomes).

    .venv/bin/python -m bench.bench_churn [--scale 100000] [--scale 1000000] [--days 180]
    .venv/bin/python -m bench.bench_churn --reuse <home> --quality-only

`--reuse SOURCE_URL WAREHOUSE_URL` re-times training and scoring on databases an earlier `--keep`
run left. `--reuse <home> --quality-only` trains nothing: it judges the newest scores a running
stack (`opsdash up` with that home: its `.env`) stored in `ml.churn_scores` against the
simulator's ground truth, at the threshold the scoring version was registered with.

Steps: simulate, ingest, `dbt run` of the relations `ml.features` reads, then the library's
own use cases (`ml.jobs.train_and_register`, `ml.jobs.score_active_customers`) against an
MLflow registry in a temporary SQLite store. Frames are built from a COPY of the feature query
(the SQL does the aggregation; Python only parses one row per customer), parsed by polars and
handed to pandas, which sklearn and shap take. The benchmark times that parse against pandas'
own reader on the same COPY output, so the choice is measured at every scale.

`make bench-parts` runs it at $SCALE and at S10 ($SCALE_S10, default 1,000,000 customers).

Targets: scoring every active customer with three plain-word factors under 60 s at S10
(1,000,000 customers); weekly training under 5 minutes. Against the ground truth: ROC-AUC
above the marts' rule-based risk score, Brier below always predicting the base rate.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import psycopg
from psycopg import sql

from bench.bench_dbt import dbt_build, ingest
from bench.common import migrate, opsdash, scratch_database, timed
from ml.churn import compute_threads
from ml.features import DBT_MODELS
from ml.registry import registry_client
from opsdash_core.settings import get_settings
from simulator.sourcedb import with_dbname

if TYPE_CHECKING:
    from ml.churn_baselines import BaselineGains

SCORING_TARGET_S = 60
TRAINING_TARGET_S = 300


def frame_builders(conn: psycopg.Connection, as_of: datetime) -> dict[str, float]:
    """Seconds to run the feature query into a COPY buffer, then to parse that buffer into a
    pandas frame with pandas' C reader and with polars (multi-threaded) plus `.to_pandas()`."""
    import pandas as pd
    import polars as pl

    from ml.features import CLOSED_STATUSES, FEATURES_SQL, parse_csv

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
    pl.read_csv(io.BytesIO(raw))  # warm up (first use initializes polars' thread pool)
    seconds["polars"], _ = timed(lambda: parse_csv(raw, ("acquisition_channel",)), repeat=3)
    return seconds


@contextlib.contextmanager
def prepared_databases(
    scale: int, days: int, keep: bool, reuse: tuple[str, str] | None
) -> Iterator[tuple[str, str]]:
    """(source URL, warehouse URL) holding simulated, ingested and dbt-built data. `reuse`
    skips the preparation (databases left by an earlier `--keep` run); `keep` does not drop
    the new databases afterwards, so training and scoring can be re-timed on the same data."""
    if reuse:
        yield reuse
        return
    with contextlib.ExitStack() as stack:
        if keep:
            base = get_settings().warehouse_url
            source_url, warehouse_url = (
                create_database(base, f"bench_churn_{scale}_src"),
                create_database(base, f"bench_churn_{scale}_wh"),
            )
        else:
            source_url = stack.enter_context(scratch_database("churn_src"))
            warehouse_url = stack.enter_context(scratch_database("churn_wh"))
        print(f"[bench_churn] scale {scale:,}: simulating {days} days", flush=True)
        opsdash(
            ["sim", "generate", "--scale", str(scale), "--days", str(days)],
            {"SOURCE_URL": source_url},
        )
        migrate(warehouse_url)
        started = time.monotonic()
        print(f"[bench_churn] ingesting ({datetime.now(UTC):%H:%M:%S})", flush=True)
        ingest(warehouse_url, source_url)
        print(f"[bench_churn] ingested in {time.monotonic() - started:.0f} s; dbt", flush=True)
        dbt_build(warehouse_url, ["--select", *DBT_MODELS, "--resource-type", "model"])
        if keep:
            print(f"[bench_churn] kept: --reuse {source_url} {warehouse_url}", flush=True)
        yield source_url, warehouse_url


def create_database(base_url: str, name: str) -> str:
    """A fresh database `name` (dropped first if left over) on the cluster of `base_url`."""
    with psycopg.connect(with_dbname(base_url, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return with_dbname(base_url, name)


def run_scale(
    scale: int, days: int, keep: bool = False, reuse: tuple[str, str] | None = None
) -> None:
    from ml.jobs import monitor_churn, score_active_customers, train_and_register

    with (
        prepared_databases(scale, days, keep, reuse) as (source_url, warehouse_url),
        tempfile.TemporaryDirectory(prefix="bench_churn_") as tmp,
    ):
        tracking_uri = f"sqlite:///{tmp}/mlflow.db"
        # A deployment's MLflow server has its tables already: create the SQLite store's
        # (and import mlflow) before the clock starts.
        registry_client(tracking_uri).search_experiments()
        # MLflow's local artifact store goes to ./mlruns: keep it in the temporary folder.
        with contextlib.chdir(tmp), psycopg.connect(warehouse_url) as conn:
            print(f"[bench_churn] training ({datetime.now(UTC):%H:%M:%S})", flush=True)
            load = [os.getloadavg()[0]]
            started, cpu = time.monotonic(), time.process_time()
            trained = train_and_register(
                conn, tracking_uri, connect=lambda: psycopg.connect(warehouse_url)
            )
            training_s, training_cpu = time.monotonic() - started, time.process_time() - cpu
            load.append(os.getloadavg()[0])
            scored_at = datetime.now(UTC).replace(microsecond=0)
            print(f"[bench_churn] scoring ({datetime.now(UTC):%H:%M:%S})", flush=True)
            started, cpu = time.monotonic(), time.process_time()
            scored = score_active_customers(conn, tracking_uri, scored_at)
            conn.commit()
            scoring_s, scoring_cpu = time.monotonic() - started, time.process_time() - cpu
            load.append(os.getloadavg()[0])
            never = set(
                r[0]
                for r in conn.execute(
                    "select c.customer_id from ml.churn_scores as c where c.scored_at = %s"
                    " and not exists (select 1 from intermediate.int_sessions_deduplicated as s"
                    " where s.customer_id = c.customer_id and s.is_completed"
                    " and s.scheduled_at < %s)",
                    (scored_at, scored_at),
                ).fetchall()
            )
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
    e = trained.evaluation
    if reuse is None:
        title = f"scale {scale:,} customers"
    else:  # --scale does not apply: say what the reused warehouse holds
        with psycopg.connect(warehouse_url) as conn:
            held = conn.execute("select count(*) from raw.customers").fetchone()[0]  # type: ignore[index]
        title = f"the reused warehouse's {held:,} customers"
    print(f"\n== churn at {title} ==")
    print(
        f"machine: {os.cpu_count()} cores, 1-minute load average {load[0]:.1f} before training,"
        f" {load[1]:.1f} after, {load[2]:.1f} after scoring; {compute_threads()} ML thread(s)"
    )
    print(
        f"weekly training                {training_s:8.1f} s   target < {TRAINING_TARGET_S} s  "
        f"({trained.kind}, {trained.rows:,} rows, alias {trained.registration.alias}; "
        f"{training_cpu:.0f} s CPU in this process)"
    )
    print(
        f"scoring + 3 plain-word factors {scoring_s:8.1f} s   target < {SCORING_TARGET_S} s at "
        f"S10  ({scored.rows:,} customers; {scored.seconds}; {scoring_cpu:.0f} s CPU in this "
        "process)"
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
        f"(typed, + to_pandas); {faster} parses faster, ml.features uses polars"
    )
    print(f"gradient boosting vs logistic regression: {trained.vs_challenger_family}")
    if trained.baselines is not None:
        print_baselines(trained.baselines)
    if trained.history_features is not None:
        print(f"goal progress as it was at the cut-offs: {trained.history_features.note()}")
    print_quality(ids, proba, actual, scored.threshold, never)


def print_baselines(gains: BaselineGains) -> None:
    """The model against recency alone and the RFM regression on the same holdout rows."""
    for label, c in (
        ("days since the last session alone", gains.recency),
        ("RFM logistic regression", gains.rfm),
    ):
        print(
            f"vs {label}: ROC-AUC {c.candidate_auc:.3f} vs {c.baseline_auc:.3f}, gain "
            f"{c.gain:+.3f} (95% {c.lower:+.3f} .. {c.upper:+.3f}; beats it: {c.lower > 0})"
        )


def quality_rows(
    proba: np.ndarray, actual: np.ndarray, threshold: float | None
) -> list[tuple[str, float, str]]:
    """(name, value, note): ROC-AUC, PR-AUC, recall and precision at the stored threshold,
    the share flagged, Brier (the note: always predicting the base rate)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    base = actual.mean()
    both = len(np.unique(actual)) > 1
    rows = [
        ("ROC-AUC", roc_auc_score(actual, proba) if both else float("nan"), ""),
        ("PR-AUC", average_precision_score(actual, proba) if both else float("nan"), ""),
    ]
    if threshold is not None:
        flagged = proba >= threshold
        hits = int((flagged & (actual == 1)).sum())
        rows += [
            ("recall at threshold", hits / max(int(actual.sum()), 1), f"threshold {threshold:.3f}"),
            ("precision at threshold", hits / max(int(flagged.sum()), 1), ""),
            ("flagged", float(flagged.mean()), f"{int(flagged.sum()):,} customers"),
        ]
    else:
        rows.append(("recall at threshold", float("nan"), "no threshold stored"))
    rows.append(("Brier", brier_score_loss(actual, proba), f"base rate {base * (1 - base):.4f}"))
    return rows


def print_quality(
    ids: list[int],
    proba: np.ndarray,
    actual: np.ndarray,
    threshold: float | None,
    never: set[int] | None = None,
) -> list[tuple[str, float, str]]:
    """Scores against the ground truth (`quality_rows`), then the churn rate by decile of
    score (and, with `never`, the share of each decile with no completed session yet)."""
    from ml.churn_metrics import churn_rate_by_decile

    base = actual.mean()
    print(f"scores vs ground truth ({len(ids):,} active customers, churn rate {base:.3f}):")
    rows = quality_rows(proba, actual, threshold)
    for name, value, note in rows:
        print(f"  {name:<24}{value:8.4f}  {note}".rstrip())
    print("  churn rate by decile of score (10 = riskiest):")
    deciles = churn_rate_by_decile(actual, proba)
    shares: list[float | None] = [None] * len(deciles)
    if never is not None:
        order = np.argsort(proba, kind="stable")  # the deciles' bins: rank by score, first wins
        no_session = np.array([i in never for i in ids], dtype="float64")[order]
        shares = [float(part.mean()) for part in np.array_split(no_session, 10)]
    for row, share in zip(deciles.itertuples(), shares, strict=True):
        extra = "" if share is None else f"  no session yet {share:.0%}"
        print(
            f"    {row.decile:>2}  {row.rows:>9,} customers  predicted {row.mean_predicted:.3f}"
            f"  observed {row.observed_rate:.3f}{extra}"
        )
    return rows


def quality_only(home: Path) -> list[tuple[str, float, str]]:
    """Judge the newest stored scores of the stack at `home` against the simulator's ground
    truth, without training or scoring anything."""
    from dotenv import dotenv_values

    from ml.registry import version_threshold
    from opsdash_core.settings import Settings

    # The home's own values, over whatever this shell exports (another stack's, say).
    values = {k: v for k, v in dotenv_values(home / ".env").items() if v is not None}
    settings = Settings(**values)
    with psycopg.connect(settings.warehouse_url) as conn:
        latest = conn.execute(
            "select scored_at, model_name, model_version from ml.churn_scores"
            " order by scored_at desc limit 1"
        ).fetchone()
        if latest is None:
            raise SystemExit(f"[bench_churn] no churn scores in {home}'s warehouse yet")
        scored_at, name, version = latest
        rows = conn.execute(
            "select customer_id, churn_probability from ml.churn_scores where scored_at = %s",
            (scored_at,),
        ).fetchall()
    with psycopg.connect(settings.source_url) as conn:
        truth: dict[int, bool] = dict(
            conn.execute("select customer_id, churned from truth.customer_outcomes").fetchall()
        )
    try:
        threshold = version_threshold(settings.mlflow_tracking_uri, version, name)
    except Exception as error:  # MLflow unreachable: the ranking figures still stand
        print(
            f"[bench_churn] threshold unknown (MLflow at {settings.mlflow_tracking_uri}: {error})"
        )
        threshold = None
    ids = [r[0] for r in rows]
    proba = np.array([r[1] for r in rows], dtype="float64")
    actual = np.array([bool(truth.get(i, False)) for i in ids], dtype="int64")
    print(f"\n== churn scores of {home} ({name} version {version}, scored {scored_at}) ==")
    return print_quality(ids, proba, actual, threshold)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--scale", action="append", type=int, help="customers; repeatable")
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument(
        "--keep", action="store_true", help="keep the prepared databases (prints --reuse URLs)"
    )
    parser.add_argument(
        "--reuse",
        nargs="+",
        metavar="HOME | SOURCE_URL WAREHOUSE_URL",
        help="time training and scoring on databases kept by an earlier --keep run; or, with"
        " --quality-only, the home of a running stack",
    )
    parser.add_argument(
        "--quality-only",
        action="store_true",
        help="no training or scoring: judge the stack's newest stored scores (--reuse HOME)",
    )
    args = parser.parse_args()
    if args.quality_only:
        if not args.reuse or len(args.reuse) != 1 or not Path(args.reuse[0]).is_dir():
            parser.error("--quality-only needs --reuse HOME (a stack's home directory)")
        quality_only(Path(args.reuse[0]))
        return
    if args.reuse and len(args.reuse) != 2:
        parser.error("--reuse takes SOURCE_URL WAREHOUSE_URL (or HOME with --quality-only)")
    for scale in args.scale or [100_000]:
        run_scale(scale, args.days, args.keep, tuple(args.reuse) if args.reuse else None)


if __name__ == "__main__":
    main()

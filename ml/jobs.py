"""The churn use cases: train and register a model, score every active customer, monitor the
serving model (feature drift, realized accuracy of past scores).

Each takes a warehouse connection and an MLflow tracking URI, so a notebook, a script or the
Dagster assets (`orchestration/defs/churn/`) run them the same way. sklearn, shap and mlflow are
imported inside the functions: importing this module stays cheap for the code location.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    import numpy as np
    import pandas as pd
    import psycopg

    from ml.churn import ChurnModel
    from ml.churn_accuracy import RealizedAccuracy
    from ml.churn_baselines import BaselineGains
    from ml.churn_drift import FeatureDrift
    from ml.churn_metrics import AucComparison, Evaluation
    from ml.churn_training import CutoffPlan, HistoryFeatures
    from ml.registry import Alias, Registration


@dataclass(frozen=True)
class TrainingOutcome:
    """One training run: where history was cut, how the model did on the out-of-time
    holdout, how it compared with the champion and the other family, where it was registered."""

    plan: CutoffPlan
    rows: int
    evaluation: Evaluation
    kind: str
    vs_challenger_family: AucComparison
    vs_champion: AucComparison | None
    registration: Registration
    baselines: BaselineGains | None = None
    history_features: HistoryFeatures | None = None


@dataclass(frozen=True)
class ScoringOutcome:
    """One scoring run over the active customers."""

    scored_at: datetime
    rows: int
    at_risk: int
    model_version: str
    threshold: float
    seconds: dict[str, float]


@dataclass(frozen=True)
class MonitoringOutcome:
    """One monitoring run: each feature's drift against the population the champion was
    last fitted on (empty when there is no champion yet), and the scoring days whose outcome
    became known."""

    monitored_date: date
    model_name: str | None
    model_version: str | None
    psi_threshold: float
    reference: str
    drift: list[FeatureDrift]
    accuracy: list[RealizedAccuracy]

    @property
    def drifted(self) -> list[str]:
        """The features whose PSI crossed the threshold, most drifted first."""
        return [d.feature for d in self.drift if d.drifted]


# Holdout rows logged with each model version as the reference for drift monitoring: the
# newest population the model was fitted on (its calibration and threshold), 60 days closer to
# today than the training cut-offs, so features that grow with a customer's age drift less
# for that reason alone. PSI's sampling noise over 10 bins is about 10 / rows (0.002), far
# below the 0.2 alert level, and the CSV stays a few MB.
REFERENCE_SAMPLE_ROWS = 5_000


def _load_in_parallel(
    conn: psycopg.Connection,
    tasks: dict[Any, Callable[[psycopg.Connection], Any]],
    connect: Callable[[], AbstractContextManager[psycopg.Connection]] | None,
) -> dict[Any, Any]:
    """Each task's result. With `connect`, tasks run side by side on connections of their
    own: each frame is one query whose work is the server's (one backend, one core), so two
    at once use both cores of a small machine (the eight frames of a training at a million
    customers took 47 s one after another, 34 s two at a time). Without it, one after another on `conn`."""
    if connect is None or len(tasks) < 2:
        return {key: task(conn) for key, task in tasks.items()}
    import os
    from concurrent.futures import ThreadPoolExecutor

    def run(task: Callable[[psycopg.Connection], Any]) -> Any:
        with connect() as own:
            return task(own)

    workers = min(len(tasks), max(2, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers, thread_name_prefix="churn-frames") as pool:
        futures = {key: pool.submit(run, task) for key, task in tasks.items()}
        return {key: future.result() for key, future in futures.items()}


def train_and_register(
    conn: psycopg.Connection,
    tracking_uri: str,
    connect: Callable[[], AbstractContextManager[psycopg.Connection]] | None = None,
) -> TrainingOutcome:
    """Train on the out-of-time plan's cut-offs, choose between the logistic regression and
    the gradient-boosting challenger on the holdout, calibrate, then register: the new version
    becomes champion only when it beats the current champion on the same holdout rows
    (paired bootstrap, PROMOTION_MARGIN), otherwise challenger. `connect` opens more
    connections to the same warehouse, for loading the frames side by side."""
    import numpy as np

    from ml.churn import ChurnParams, joined
    from ml.churn_metrics import (
        CHALLENGER_MARGIN,
        PROMOTION_MARGIN,
        reliability_curve,
        segment_calibration,
        threshold_table,
    )
    from ml.churn_training import (
        MAX_CUSTOMERS_PER_CUTOFF,
        agree_on_history_features,
        plan_cutoffs,
        select_model,
        stack,
        stack_labels,
    )
    from ml.features import (
        SAMPLE_BUCKETS,
        data_range,
        label_churn,
        load_features,
        population_size,
        sample_buckets,
    )
    from ml.registry import CHALLENGER, CHAMPION, REFERENCE_SAMPLE, log_and_register

    oldest, newest = data_range(conn)
    if oldest is None or newest is None:
        raise ValueError("no sessions have taken place yet; nothing to learn from")
    plan = plan_cutoffs(oldest, newest)
    cutoffs = [*plan.train_cutoffs, plan.valid_cutoff]
    # The newest cut-off has the largest population (customers accumulate): size the sample on it.
    population = population_size(conn, plan.valid_cutoff)
    sample = sample_buckets(population, MAX_CUSTOMERS_PER_CUTOFF)
    tasks: dict[Any, Callable[[psycopg.Connection], Any]] = {}
    for t in cutoffs:  # the slow queries (features) first, so the pool ends together
        tasks["x", t] = partial(load_features, as_of=t, sample=sample)
    for t in cutoffs:
        tasks["y", t] = partial(
            label_churn, as_of=t, horizon_days=plan.horizon_days, newest=newest, sample=sample
        )
    frames = _load_in_parallel(conn, tasks, connect)
    features, history = agree_on_history_features({t: frames["x", t] for t in cutoffs})
    train_x = stack({t: features[t] for t in plan.train_cutoffs})
    train_y = stack_labels({t: frames["y", t] for t in plan.train_cutoffs})
    valid_x = features[plan.valid_cutoff]
    valid_y = frames["y", plan.valid_cutoff]
    params = ChurnParams()
    selection = select_model(train_x, train_y, valid_x, valid_y, params)
    model = selection.model

    x, y = joined(valid_x, valid_y)
    vs_champion = _compare_with_champion(tracking_uri, model, x, y.to_numpy(), PROMOTION_MARGIN)
    alias: Alias = CHAMPION if vs_champion is None or vs_champion.candidate_wins else CHALLENGER
    truth, proba = selection.holdout_truth, selection.holdout_proba
    # New sign-ups without a first session are scored from almost no behaviour: their own
    # calibration on the holdout shows whether the overall calibration holds for them.
    no_sessions = (x["lifetime_sessions"] == 0).to_numpy()
    metrics = {
        **selection.evaluation.as_dict(),
        **segment_calibration(
            truth, proba, {"no_sessions": no_sessions, "with_sessions": ~no_sessions}
        ),
        **{f"family_{k}": v for k, v in selection.challenger.as_dict().items()},
        **{f"runner_up_{k}": v for k, v in selection.runner_up_evaluation.as_dict().items()},
        **(selection.baselines.metrics() if selection.baselines else {}),
        **(
            {f"vs_champion_{k}": v for k, v in vs_champion.as_dict().items()} if vs_champion else {}
        ),
    }
    run_params = {
        **params.as_dict(),
        "chosen_kind": model.kind,
        "train_cutoffs": ",".join(t.isoformat() for t in plan.train_cutoffs),
        "valid_cutoff": plan.valid_cutoff.isoformat(),
        "out_of_time": plan.out_of_time,
        "horizon_days": plan.horizon_days,
        "train_rows": len(train_x),
        "holdout_population": population,
        "customer_sample_share": round((sample or SAMPLE_BUCKETS) / SAMPLE_BUCKETS, 4),
        "challenger_margin": CHALLENGER_MARGIN,
        "promotion_margin": PROMOTION_MARGIN,
        "features": ",".join(model.feature_names),
        "history_features": ",".join(history.used) or "none",
        "history_features_note": history.note(),
    }
    grid = np.unique(np.r_[np.round(np.arange(0.05, 1.0, 0.05), 2), model.threshold])
    table = threshold_table(truth, proba, grid)
    curve = reliability_curve(truth, proba)
    figures = _figures(model, x, curve)
    registration = log_and_register(
        model,
        metrics,
        run_params,
        tracking_uri,
        alias=alias,
        tables={
            "threshold_table": table,
            "reliability_curve": curve,
            REFERENCE_SAMPLE: model.align(
                valid_x.sample(min(len(valid_x), REFERENCE_SAMPLE_ROWS), random_state=0)
            ),
        },
        figures=figures,
        input_example=model.align(x.head(5)),
        champion_auc=vs_champion.baseline_auc if vs_champion else None,
    )
    _close(figures)
    return TrainingOutcome(
        plan=plan,
        rows=len(train_x) + len(valid_x),
        evaluation=selection.evaluation,
        kind=model.kind,
        vs_challenger_family=selection.challenger,
        vs_champion=vs_champion,
        registration=registration,
        baselines=selection.baselines,
        history_features=history,
    )


def _close(figures: dict[str, object]) -> None:
    """Free the figures once logged: the Dagster process lives on between runs."""
    import matplotlib.pyplot as plt

    for figure in figures.values():
        plt.close(figure)  # type: ignore[arg-type]


def _compare_with_champion(
    tracking_uri: str,
    model: ChurnModel,
    x: pd.DataFrame,
    truth: np.ndarray,
    margin: float,
) -> AucComparison | None:
    """The new model against the serving champion on the same holdout rows, or None when
    there is no champion to compare with."""
    import numpy as np
    from mlflow.exceptions import MlflowException

    from ml.churn_metrics import paired_auc_gain
    from ml.churn_training import MAX_COMPARISON_ROWS
    from ml.registry import load_champion

    try:
        champion = load_champion(tracking_uri)
    except MlflowException:  # no registered model or no champion yet
        return None
    rows = x.head(MAX_COMPARISON_ROWS)
    labels = np.asarray(truth)[: len(rows)]
    return paired_auc_gain(
        labels, champion.model.log_odds(rows), model.log_odds(rows), margin=margin
    )


def _figures(model: ChurnModel, x: pd.DataFrame, curve: pd.DataFrame) -> dict[str, object]:
    """The reliability curve and a SHAP summary (beeswarm) on a sample of holdout rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    from ml.explain import shap_values

    reliability, axes = plt.subplots(figsize=(5, 5))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axes.plot(curve["mean_predicted"], curve["observed_rate"], marker="o", label="model")
    axes.set_xlabel("predicted churn probability")
    axes.set_ylabel("observed churn rate")
    axes.legend()
    sample = model.align(x.sample(min(len(x), 2000), random_state=0))
    shap.summary_plot(shap_values(model, sample), sample, show=False)
    summary = plt.gcf()
    return {"reliability_curve": reliability, "shap_summary": summary}


def score_active_customers(
    conn: psycopg.Connection,
    tracking_uri: str,
    scored_at: datetime,
    connect: Callable[[], AbstractContextManager[psycopg.Connection]] | None = None,
) -> ScoringOutcome:
    """Score every customer active at `scored_at` with the champion and store the scores.
    With `connect`, the features load in shards of customers side by side (one query is one
    backend, one core: at a million customers 23 s on its own) while the model loads."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from ml.churn import score
    from ml.explain import top_factors
    from ml.features import combine_shards, load_features, shards
    from ml.registry import load_champion
    from ml.scores_io import write_churn_scores

    clock = time.perf_counter()
    with ThreadPoolExecutor(1, thread_name_prefix="champion") as pool:
        champion = pool.submit(load_champion, tracking_uri)
        try:
            if connect is None:
                features = load_features(conn, scored_at)
            else:
                parts = shards(max(2, os.cpu_count() or 1))
                tasks: dict[Any, Callable[[psycopg.Connection], Any]] = {
                    part: partial(load_features, as_of=scored_at, sample=part) for part in parts
                }
                features = combine_shards(list(_load_in_parallel(conn, tasks, connect).values()))
        except Exception:
            # a champion that cannot be served (refused, missing) is the error to report
            champion.result()
            raise
        seconds = {"features": time.perf_counter() - clock}
        loaded = champion.result()
    seconds["load_model_after_features"] = time.perf_counter() - clock - seconds["features"]
    clock = time.perf_counter()
    probability = score(loaded.model, features)
    factors = top_factors(loaded.model, features, k=3)
    seconds["score_explain"] = time.perf_counter() - clock
    clock = time.perf_counter()
    rows = write_churn_scores(conn, probability, factors, scored_at, loaded)
    seconds["write"] = time.perf_counter() - clock
    return ScoringOutcome(
        scored_at=scored_at,
        rows=rows,
        at_risk=int((probability >= loaded.model.threshold).sum()),
        model_version=loaded.version,
        threshold=loaded.model.threshold,
        seconds={k: round(v, 2) for k, v in seconds.items()},
    )


def monitor_churn(
    conn: psycopg.Connection,
    tracking_uri: str,
    now: datetime,
    psi_threshold: float | None = None,
    horizon_days: int = 60,
) -> MonitoringOutcome:
    """Compare the features of the customers at `now` with the population the champion was
    last fitted on (PSI per feature over a sample of at most DRIFT_SAMPLE_CUSTOMERS customers,
    stored in ml.churn_drift for `now`'s date), then evaluate
    the scoring days whose `horizon_days` outcome became known (ml.churn_accuracy). Both in
    the caller's transaction. The reference is the holdout sample logged with the version; for
    a version logged before samples were, the same population recomputed at its holdout
    cut-off (features are point-in-time)."""
    from mlflow.exceptions import MlflowException

    from ml.churn_accuracy import record_realized_accuracy
    from ml.churn_drift import DRIFT_SAMPLE_CUSTOMERS, PSI_ALERT, feature_drift, write_drift
    from ml.features import load_features, population_size, sample_buckets
    from ml.registry import drift_reference, load_champion, version_threshold

    threshold = PSI_ALERT if psi_threshold is None else psi_threshold
    day = now.date()
    drift: list[FeatureDrift] = []
    try:
        loaded = load_champion(tracking_uri)
    except MlflowException:  # nothing registered yet: nothing to drift from
        loaded = None
    reference = "no champion yet"
    if loaded is not None:
        known = drift_reference(tracking_uri, loaded.version, loaded.name)
        expected = known.sample
        reference = "holdout sample"
        if expected is None and known.valid_cutoff is not None:
            expected = load_features(conn, known.valid_cutoff)
            reference = f"population at {known.valid_cutoff.isoformat()}"
        if expected is not None:
            sample = sample_buckets(population_size(conn, now), DRIFT_SAMPLE_CUSTOMERS)
            current = loaded.model.align(load_features(conn, now, sample=sample))
            drift = feature_drift(loaded.model.align(expected), current, threshold)
            write_drift(conn, day, loaded.name, loaded.version, drift, threshold)
        else:
            reference = "no reference logged with the champion"

    thresholds: dict[tuple[str, str], float | None] = {}

    def threshold_of(name: str, version: str) -> float | None:
        if (name, version) not in thresholds:
            thresholds[(name, version)] = version_threshold(tracking_uri, version, name)
        return thresholds[(name, version)]

    accuracy = record_realized_accuracy(conn, now, threshold_of, horizon_days)
    return MonitoringOutcome(
        monitored_date=day,
        model_name=loaded.name if loaded else None,
        model_version=loaded.version if loaded else None,
        psi_threshold=threshold,
        reference=reference,
        drift=drift,
        accuracy=accuracy,
    )

"""The fast cadences are settings (OPSDASH_CYCLE_MINUTES, OPSDASH_SUPPORT_CALLS_MINUTES), and
the queue lets support calls run beside a cycle while a cycle never piles up behind itself."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from pydantic import ValidationError

from opsdash_core.settings import PROJECT_ROOT, Settings
from orchestration.lib.schedules import LANE_TAG, cadence, every, skip_while_waiting


def settings(**env: object) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[call-arg]


def test_cron_for_every_allowed_cadence() -> None:
    assert every(1) == "* * * * *"
    assert every(5) == "*/5 * * * *"
    assert every(30) == "*/30 * * * *"


def test_defaults_are_five_and_fifteen_minutes() -> None:
    crons = cadence(settings())
    assert crons["incremental_cycle"] == "*/5 * * * *"
    assert crons["ingest_support_calls"] == "*/15 * * * *"


def test_one_minute_setting_gives_every_minute_schedules() -> None:
    crons = cadence(settings(OPSDASH_CYCLE_MINUTES=1, OPSDASH_SUPPORT_CALLS_MINUTES=1))
    assert crons["incremental_cycle"] == "* * * * *"
    assert crons["ingest_support_calls"] == "* * * * *"


@pytest.mark.parametrize("name", ["OPSDASH_CYCLE_MINUTES", "OPSDASH_SUPPORT_CALLS_MINUTES"])
@pytest.mark.parametrize("value", [0, 4, 7, 60, -5])
def test_a_cadence_that_does_not_divide_the_hour_is_refused(name: str, value: int) -> None:
    with pytest.raises(ValidationError, match=f"{name}[\\s\\S]*use one of 1, 2, 3, 5, 10, 15, 30"):
        settings(**{name: value})


def test_code_location_follows_the_settings(tmp_path: Path) -> None:
    """The whole code location, loaded as Dagster loads it, with a 1-minute cadence in the env
    file: every-minute schedules and tables that say 1 minute (tags, cadence)."""
    env_file = tmp_path / "env"
    env_file.write_text(
        "OPSDASH_CYCLE_MINUTES=1\nOPSDASH_SUPPORT_CALLS_MINUTES=1\nOPSDASH_CYCLE_DBT_TESTS=hourly\n"
    )
    code = (
        "import json; from orchestration.definitions import defs;"
        "from orchestration.lib.ingest.tables import TABLES;"
        "from orchestration.defs.transform.schedules import DBT_OP, incremental_cycle_job;"
        "repo = defs.get_repository_def();"
        "print(json.dumps({'crons': {s.job_name: s.cron_schedule for s in repo.schedule_defs},"
        " 'tables': {t.name: t.cadence_minutes for t in TABLES},"
        " 'dbt': incremental_cycle_job.config['ops'][DBT_OP]['config']}))"
    )
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPSDASH_CYCLE", "OPSDASH_SUP"))
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
        env={**env, "OPSDASH_ENV_FILE": str(env_file)},
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["crons"]["incremental_cycle"] == "* * * * *"
    assert got["crons"]["ingest_support_calls"] == "* * * * *"
    assert got["crons"]["ingest_dimensions"] == "7 * * * *"
    assert got["tables"]["sessions"] == got["tables"]["inbound_calls"] == 1
    assert got["tables"]["subjects"] == 60
    assert got["dbt"]["tests"] is False  # OPSDASH_CYCLE_DBT_TESTS=hourly


def test_lanes_keep_dbt_single_and_support_calls_beside_the_cycle() -> None:
    from orchestration.defs.ingestion.schedules import (
        ingest_dimensions_job,
        ingest_sessions_job,
        ingest_support_calls_job,
    )
    from orchestration.defs.transform.assets import opsdash_dbt_models
    from orchestration.defs.transform.schedules import (
        check_marts_job,
        incremental_cycle_job,
        refresh_marts_job,
    )

    lanes = {
        job.name: job.run_tags.get(LANE_TAG)
        for job in (
            incremental_cycle_job,
            refresh_marts_job,
            check_marts_job,
            ingest_sessions_job,
            ingest_dimensions_job,
            ingest_support_calls_job,
        )
    }
    assert set(lanes.values()) == {"cycle", "ingest_beside"}
    beside = [j for j, lane in lanes.items() if lane == "ingest_beside"]
    assert beside == ["ingest_dimensions", "ingest_support_calls"]
    assert opsdash_dbt_models.op.pool == "dbt"

    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    queue_and_pools = {k: config[k] for k in ("run_coordinator", "concurrency")}
    with dg.instance_for_test(overrides=queue_and_pools) as instance:
        limits = instance.get_concurrency_config()
    assert limits.run_queue_config is not None
    assert limits.run_queue_config.max_concurrent_runs == 2  # a cycle and a load beside it
    assert limits.run_queue_config.tag_concurrency_limits == [
        {"key": LANE_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]
    assert limits.pool_config.default_pool_limit == 1  # one dbt step at a time


def test_dagster_yaml_is_a_valid_instance_config(tmp_path: Path) -> None:
    """Dagster refuses run-queue limits in two places (`run_coordinator` and `concurrency`);
    load the file the way the daemon does."""
    from dagster._core.instance.config import dagster_instance_config

    (tmp_path / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 2


def _tick(instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    context = dg.build_schedule_context(instance=instance)
    return skip_while_waiting("incremental_cycle")(context)


@pytest.mark.parametrize(
    ("status", "skips"),
    [
        (dg.DagsterRunStatus.NOT_STARTED, True),
        (dg.DagsterRunStatus.STARTED, False),
        (dg.DagsterRunStatus.SUCCESS, False),
        (dg.DagsterRunStatus.FAILURE, False),
    ],
)
def test_a_cycle_tick_queues_one_run_behind_the_running_one(
    status: dg.DagsterRunStatus, skips: bool
) -> None:
    with dg.instance_for_test() as instance:
        assert isinstance(_tick(instance), dg.RunRequest)
        instance.add_run(dg.DagsterRun(job_name="incremental_cycle", status=status))
        instance.add_run(
            dg.DagsterRun(job_name="ingest_support_calls", status=dg.DagsterRunStatus.STARTED)
        )
        assert isinstance(_tick(instance), dg.SkipReason) is skips


def test_the_code_locations_cycle_schedule_queues_at_most_one_cycle() -> None:
    """The schedules Dagster loads: while a cycle runs, the cycle's tick queues the next one
    (it starts when the lane frees, instead of a whole cadence later); while one already waits,
    the tick skips. A job without a lane (weekly churn training) is requested anyway."""
    from orchestration.definitions import defs

    repo = defs.get_repository_def()
    schedules = {s.job_name: s for s in repo.schedule_defs}
    with dg.instance_for_test() as instance:
        for job in ("incremental_cycle", "train_churn_model"):
            instance.add_run(dg.DagsterRun(job_name=job, status=dg.DagsterRunStatus.STARTED))
        context = dg.build_schedule_context(instance=instance)
        behind_running = schedules["incremental_cycle"].evaluate_tick(context)
        instance.add_run(
            # created, not yet launched (a QUEUED run needs a real job origin to be stored)
            dg.DagsterRun(job_name="incremental_cycle", status=dg.DagsterRunStatus.NOT_STARTED)
        )
        behind_waiting = schedules["incremental_cycle"].evaluate_tick(context)
        churn = schedules["train_churn_model"].evaluate_tick(context)
    assert behind_running.run_requests
    assert not behind_running.skip_message
    assert behind_waiting.skip_message
    assert not behind_waiting.run_requests
    assert churn.run_requests
    assert not churn.skip_message


def test_the_cycle_checks_by_sql_and_leaves_the_trends_to_an_hourly_gx_job() -> None:
    from orchestration.definitions import defs
    from orchestration.defs.quality.checks import ENGINE_TAG

    repo = defs.get_repository_def()
    cycle = repo.get_job("incremental_cycle")
    trends = repo.get_job("check_raw_trends")
    assert cycle.run_tags[ENGINE_TAG] == "sql"
    assert ENGINE_TAG not in trends.run_tags  # GX, with Data Docs
    in_cycle = {
        f"{k.asset_key.to_user_string()}:{k.name}"
        for k in cycle.asset_layer.asset_graph.asset_check_keys
        if k.asset_key.path[0] == "raw"
    }
    assert in_cycle == {
        "raw/sessions:valid_batch",
        "raw/sessions:quarantine_rate",
        "raw/session_requests:valid_batch",
        "raw/session_requests:quarantine_rate",
    }
    assert {
        f"{k.asset_key.to_user_string()}:{k.name}"
        for k in trends.asset_layer.asset_graph.asset_check_keys
    } == {"raw/sessions:trends", "raw/session_requests:trends", "raw/inbound_calls:trends"}
    calls = repo.get_job("ingest_support_calls")
    assert calls.run_tags[ENGINE_TAG] == "sql"
    assert {
        f"{k.asset_key.to_user_string()}:{k.name}"
        for k in calls.asset_layer.asset_graph.asset_check_keys
    } == {"raw/inbound_calls:valid_batch", "raw/inbound_calls:quarantine_rate"}

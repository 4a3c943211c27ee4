"""The dbt project's configuration and its Dagster wiring, checked without a database."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsdash_core.settings import PROJECT_ROOT

DBT = PROJECT_ROOT / "dbt_project"
MARTS = {
    "customer_health",
    "customer_health_history",
    "tutor_performance_daily",
    "tutor_performance",
    "supply_demand_hourly",
    "supply_demand_daily",
    "supply_demand_category_hourly",
    "ops_kpis_daily",
}


def project() -> dict[str, Any]:
    return yaml.safe_load((DBT / "dbt_project.yml").read_text())


def model_docs() -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for path in (DBT / "models").rglob("_*.yml"):
        for model in yaml.safe_load(path.read_text()).get("models") or []:
            docs[model["name"]] = model
    return docs


@pytest.mark.parametrize("weights", ["risk_weights", "risk_weights_new", "tutor_score_weights"])
def test_weights_sum_to_100(weights: str) -> None:
    assert sum(project()["vars"][weights].values()) == 100


def test_risk_weight_sets_cover_the_same_components() -> None:
    variables = project()["vars"]
    assert (
        set(variables["risk_weights"])
        == set(variables["risk_weights_new"])
        == {
            "recency",
            "frequency",
            "rating",
            "support_calls",
            "goal_progress",
            "tutor_switching",
            "tenure",
        }
    )


def test_tier_edges_increase_within_0_100() -> None:
    tiers = project()["vars"]["risk_tiers"]
    assert 0 < tiers["medium"] < tiers["high"] < tiers["critical"] < 100


def test_every_model_is_documented_with_its_grain() -> None:
    docs = model_docs()
    models = {p.stem for p in (DBT / "models").rglob("*.sql")}
    assert models >= MARTS
    assert models == set(docs), models ^ set(docs)
    for name, model in docs.items():
        if name.startswith("stg_"):
            continue
        assert "one row per" in model.get("description", "").lower(), name


def test_marts_contract_keeps_the_columns_others_read() -> None:
    health = model_docs()["customer_health"]
    assert health["config"]["contract"]["enforced"] is True
    types = {c["name"]: c["data_type"] for c in health["columns"]}
    assert types["customer_id"] == "bigint"
    assert types["computed_at"] == "timestamp with time zone"
    for column in (
        "risk_score",
        "risk_tier",
        "days_since_last_session",
        "sessions_30d",
        "avg_rating_30d",
        "inbound_calls_30d",
        "tenure_days",
    ):
        assert column in types, column


def test_customer_health_does_not_claim_a_churn_probability() -> None:
    """The calibrated churn probability lives in ml.churn_scores (the app and the
    recommendations join it); the marts neither carry an always-null column for it nor read
    ml.* to fill one."""
    docs = model_docs()
    for model in ("customer_health", "customer_health_history"):
        assert "churn_probability" not in {c["name"] for c in docs[model].get("columns", [])}
        sql = (DBT / "models" / "marts" / f"{model}.sql").read_text()
        assert "churn_probability" not in sql, model
        assert "churn_scores" not in sql, model


def test_only_staging_reads_sources() -> None:
    for path in (DBT / "models").rglob("*.sql"):
        if "source(" in path.read_text():
            assert path.parent.name == "staging", path


def test_profiles_read_only_environment_variables() -> None:
    profile = (DBT / "profiles.yml").read_text()
    values = re.findall(r"^\s+(host|port|user|password|dbname):\s*(.+)$", profile, re.M)
    assert values
    for _key, setting in values:
        assert "env_var(" in setting


def manifest() -> dict[str, Any]:
    """The parsed project (`opsdash prepare` / `make test-unit` writes it): configs resolved
    the way dbt resolves them, folder-level config included."""
    path = DBT / "target" / "manifest.json"
    assert path.exists(), f"{path} is missing: run `opsdash prepare` (dbt parse) first"
    return json.loads(path.read_text())


def test_time_series_models_declare_their_layout() -> None:
    """Each subject-hourly model gets the whole time-series layout from its folder's config;
    a model moved out of the folder (or a hook lost) would be a plain table again."""
    series = {
        node["name"]: node["config"]
        for node in manifest()["nodes"].values()
        if node["resource_type"] == "model" and "timeseries" in node["config"]["meta"]
    }
    assert set(series) == {
        "int_demand_hourly",
        "int_supply_hourly",
        "supply_demand_hourly",
        "int_tutor_sessions_daily",
        "customer_health_history",
        "tutor_performance_daily",
    }
    horizon = f"{project()['vars']['supply_horizon_days']} days"
    for name, config in series.items():
        hooks = [hook["sql"] for hook in config["pre-hook"] + config["post-hook"]]
        assert "{{ timeseries_prepare() }}" in hooks, name
        assert "{{ timeseries_finalize() }}" in hooks, name
        assert config["materialized"] == "incremental", name
        assert config["meta"]["timeseries"]["time_column"], name
    for name in ("int_demand_hourly", "int_supply_hourly", "supply_demand_hourly"):
        config = series[name]
        assert config["unique_key"] == ["subject_id", "hour_at"], name
        assert config["incremental_strategy"] == "replace_keys", name
        # dbt_project.yml repeats the var's default (it is rendered before its vars exist)
        assert config["meta"]["timeseries"]["ahead"] == horizon, name


def _layer(unique_id: str, nodes: dict[str, Any]) -> str:
    if unique_id.startswith("source."):
        return "source"
    return str(nodes[unique_id]["config"]["schema"])


def test_layers_only_read_downward() -> None:
    """dbt-project-evaluator's DAG rules, checked by hand (its package needs dbt hub): staging
    reads exactly one source and nothing else, intermediate never reads marts, and only staging
    reads sources."""
    parsed = manifest()
    nodes = parsed["nodes"]
    allowed = {
        "staging": {"source"},
        "intermediate": {"staging", "intermediate"},
        "marts": {"staging", "intermediate", "marts"},
    }
    for uid, node in nodes.items():
        if node["resource_type"] != "model":
            continue
        parents = parsed["parent_map"][uid]
        layers = {_layer(p, nodes) for p in parents}
        assert layers <= allowed[node["config"]["schema"]], (node["name"], parents)
        if node["config"]["schema"] == "staging":
            assert len(parents) == 1, (node["name"], parents)


def test_no_model_rejoins_an_upstream_concept() -> None:
    """The evaluator's `fct_rejoining_of_upstream_concepts`: a model reads A directly and also
    through B, where B has no other child (model or exposure) - B could bring A's columns."""
    parsed = manifest()
    parents = {uid: set(ps) for uid, ps in parsed["parent_map"].items() if uid.startswith("model.")}
    # exposures count as children, as in the evaluator: a mart the app reads is not single-use
    children = {
        uid: {c for c in cs if c.startswith(("model.", "exposure."))}
        for uid, cs in parsed["child_map"].items()
    }
    rejoined = [
        (a, b, c)
        for c, direct in parents.items()
        for b in direct
        if b.startswith("model.") and children[b] == {c}
        for a in parents[b] & direct
    ]
    assert rejoined == []


def test_every_source_table_is_described_and_used() -> None:
    parsed = manifest()
    used = {p for ps in parsed["parent_map"].values() for p in ps}
    for uid, source in parsed["sources"].items():
        assert source["description"].strip(), uid
        assert uid in used, f"{uid} is declared but no model reads it"


def test_source_freshness_warns_where_the_quality_checks_do() -> None:
    """Source freshness (on `_ingested_at`) warns at the age the GE freshness trend check of the
    same raw table warns at, and errors at three times that; tables without one have none."""
    from data_checks.raw_suites import RAW_TABLES, TREND_RULES
    from data_checks.trends import Freshness

    ge = {
        table: rule.max_age
        for table, rules in TREND_RULES.items()
        for rule in rules
        if isinstance(rule, Freshness)
    }
    seconds = {"minute": 60, "hour": 3600, "day": 86400}
    sources = {s["name"]: s for s in manifest()["sources"].values() if s["source_name"] == "raw"}
    assert set(sources) == set(RAW_TABLES)
    for table, source in sources.items():
        freshness = source["freshness"] or {}
        warn, error = freshness.get("warn_after") or {}, freshness.get("error_after") or {}
        if table not in ge:
            assert not warn.get("count"), table
            assert not error.get("count"), table
            continue
        assert source["loaded_at_field"] == "_ingested_at", table
        warn_s = warn["count"] * seconds[warn["period"]]
        assert warn_s == ge[table].total_seconds(), table
        assert error["count"] * seconds[error["period"]] == 3 * warn_s, table


def test_build_args() -> None:
    from orchestration.defs.transform.assets import DbtBuildConfig, build_args

    assert build_args(DbtBuildConfig()) == ["build"]
    assert build_args(DbtBuildConfig(heavy_tests=False)) == [
        "build",
        "--exclude",
        "tag:heavy test_type:unit",
    ]
    assert build_args(DbtBuildConfig(full_refresh=True)) == ["build", "--full-refresh"]
    # OPSDASH_CYCLE_DBT_TESTS=hourly: the cycle builds the models only
    assert build_args(DbtBuildConfig(heavy_tests=False, tests=False)) == [
        "build",
        "--exclude",
        "tag:heavy test_type:unit resource_type:test",
    ]


def test_schedules_run_the_cycle_light_and_the_check_daily() -> None:
    from orchestration.defs.transform.schedules import (
        DBT_OP,
        SCHEDULES,
        check_marts_job,
        check_marts_light_job,
        incremental_cycle_job,
        refresh_marts_job,
    )

    crons = {s.job_name: s.cron_schedule for s in SCHEDULES}
    assert crons == {
        "incremental_cycle": "*/5 * * * *",
        "check_marts": "40 3 * * *",
        "check_marts_light": "47 * * * *",
        "check_raw_trends": "27 * * * *",
    }
    cycle = incremental_cycle_job.config["ops"][DBT_OP]["config"]
    assert cycle == {"heavy_tests": False, "report_passing_tests": False, "tests": True}
    assert refresh_marts_job.config["ops"][DBT_OP]["config"]["heavy_tests"] is False
    assert check_marts_light_job.config["ops"][DBT_OP]["config"]["heavy_tests"] is False
    assert check_marts_job.config["ops"][DBT_OP]["config"]["heavy_tests"] is True


def test_the_cycle_plans_no_dbt_check_and_the_hourly_job_every_light_one() -> None:
    """Dagster writes an event per planned check when it creates a run: the cycle plans only
    the raw tables' blocking checks; every light dbt test is a check of the hourly job."""
    from orchestration.definitions import defs
    from orchestration.defs.transform.assets import HEAVY_CHECKS, LIGHT_CHECKS

    def planned_checks(name: str) -> set[str]:
        graph = defs.resolve_job_def(name).asset_layer.asset_graph
        return {"/".join(k.asset_key.path) + ":" + k.name for k in graph.asset_check_keys}

    cycle = planned_checks("incremental_cycle")
    assert cycle
    assert all(c.startswith("raw/") for c in cycle)
    light = planned_checks("check_marts_light")
    assert len(light) == len(LIGHT_CHECKS) > 50
    assert not light & {"/".join(k.asset_key.path) + ":" + k.name for k in HEAVY_CHECKS}


def test_no_compiled_artifacts_are_in_the_project() -> None:
    """dbt's build output (target/, logs/, a manifest, installed packages) is never committed,
    even force-added past .gitignore."""
    tracked = subprocess.run(
        ["git", "ls-files", "dbt_project"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert tracked, "git ls-files found nothing: not a checkout?"
    artifacts = [
        path
        for path in tracked
        if {"target", "logs", "dbt_packages"} & set(Path(path).parts[1:-1])
        or Path(path).name
        in {"manifest.json", "run_results.json", "catalog.json", "package-lock.yml"}
    ]
    assert artifacts == []

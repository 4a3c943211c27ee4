"""Alert rules YAML: the repository file loads, overrides merge, and a mistake is reported with
the file, the rule and the field (pure loading, no database)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from alerting.config import DEFAULT_RULES_PATH, RulesFileError, load_rules, parse_duration
from alerting.engine import format_notification, group_key

ISSUE_RULES = {
    "customer_critical",
    "customer_at_risk",
    "at_risk_spike",
    "tutor_underperforming",
    "supply_gap",
    "support_surge",
    "forecast_accuracy",
    "churn_drift",
    "sessions_stale",
    "check_failed",
    "watermark_stuck",
    "outbox_given_up",
    "dagster_run_failed",
}


def test_repository_rules_load_and_cover_the_issue() -> None:
    config = load_rules(override=False)
    assert {r.name for r in config.rules} >= ISSUE_RULES
    spike = config.rule("at_risk_spike")
    assert spike.kind_params().model_dump()["baseline_days"] == 14
    assert config.rule("supply_gap").for_ == timedelta(minutes=10)
    assert config.rule("customer_critical").inhibited_by == ["sessions_stale", "watermark_stuck"]
    assert [r.name for r in config.triggered_by("event")] == ["dagster_run_failed"]


def test_a_deployment_override_changes_a_threshold_and_disables_a_rule(tmp_path: Path) -> None:
    override = tmp_path / "site.yaml"
    override.write_text(
        "defaults: {repeat_interval: 2h}\n"
        "rules:\n"
        "  - {name: tutor_underperforming, params: {max_no_show_rate: 0.2}}\n"
        "  - {name: support_surge, enabled: false}\n"
    )
    config = load_rules(override=override)
    tutor = config.rule("tutor_underperforming")
    params = tutor.kind_params().model_dump()
    assert (params["max_no_show_rate"], params["min_sessions"]) == (0.2, 8)  # others kept
    assert tutor.repeat_interval == timedelta(hours=24)  # the rule's own value wins
    assert config.rule("sessions_stale").repeat_interval == timedelta(hours=1)
    assert config.rule("check_failed").repeat_interval == timedelta(hours=4)
    assert "support_surge" not in {r.name for r in config.enabled}
    assert config.sources == [str(DEFAULT_RULES_PATH), str(override)]


@pytest.mark.parametrize(
    ("rule_yaml", "message"),
    [
        (
            "{name: r1, kind: tutor_underperforming, severity: urgent, entity_type: tutor}",
            "rule 'r1', field 'severity'",
        ),
        (
            "{name: r2, kind: tutor_underperforming, severity: warning, entity_type: tutor,"
            " params: {max_no_show_rate: 3}}",
            "rule 'r2', field 'params.max_no_show_rate'",
        ),
        (
            "{name: r3, kind: tutor_underperforming, severity: warning, entity_type: tutor,"
            " params: {sql: 'drop table x'}}",
            "rule 'r3', field 'params.sql': Extra inputs are not permitted",
        ),
        (
            "{name: r4, kind: no_such_kind, severity: warning, entity_type: tutor}",
            "rule 'r4', field '(rule)': Value error, unknown kind 'no_such_kind'",
        ),
        (
            "{name: r5, kind: sessions_stale, severity: critical, entity_type: t, for: soon}",
            "rule 'r5', field 'for'",
        ),
        (
            "{name: r6, kind: sessions_stale, severity: critical, entity_type: t,"
            " inhibited_by: [ghost]}",
            "rule 'r6', field 'inhibited_by': unknown rule 'ghost'",
        ),
    ],
)
def test_validation_errors_name_file_rule_and_field(
    tmp_path: Path, rule_yaml: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"rules:\n  - {rule_yaml}\n")
    with pytest.raises(RulesFileError) as info:
        load_rules(path, override=False)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_an_override_mistake_names_the_override_file(tmp_path: Path) -> None:
    override = tmp_path / "site.yaml"
    override.write_text("rules:\n  - {name: supply_gap, params: {ratio: -1}}\n")
    with pytest.raises(
        RulesFileError, match=rf"^{override}: rule 'supply_gap', field 'params.ratio'"
    ):
        load_rules(override=override)


def test_churn_drift_has_one_threshold_in_the_monitoring_asset(tmp_path: Path) -> None:
    """The rule reads the drift table's `is_drifted` flag; a site file still setting the old
    rule-side PSI threshold is told where the threshold lives now."""
    assert "max_psi" not in load_rules(override=False).rule("churn_drift").params
    override = tmp_path / "site.yaml"
    override.write_text("rules:\n  - {name: churn_drift, params: {max_psi: 0.25}}\n")
    with pytest.raises(RulesFileError) as info:
        load_rules(override=override)
    assert "rule 'churn_drift', field 'params.max_psi'" in str(info.value)
    assert "psi_threshold" in str(info.value)


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration(30) == timedelta(seconds=30)
    with pytest.raises(ValueError, match="duration"):
        parse_duration("5 minutes")


def test_grouped_notification_lists_twenty_and_counts_the_rest() -> None:
    rule = load_rules(override=False).rule("tutor_underperforming")
    alerts = [{"id": i, "title": f"Tutor {i} underperforming"} for i in range(1, 26)]
    subject, body, slack = format_notification(rule, "alert", alerts)
    assert subject == "[opsdash] WARNING: 25 tutor underperforming alerts"
    assert body.count("  - Tutor ") == 20
    assert "...and 5 more." in body
    assert "Tutor 20 underperforming (alert 20)" in str(slack["blocks"])
    single = format_notification(rule, "resolved", alerts[:1])[0]
    assert single == "[opsdash] WARNING: Resolved: Tutor 1 underperforming"
    assert group_key(rule, None) == "rule=tutor_underperforming"

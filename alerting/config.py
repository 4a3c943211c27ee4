"""Alert rules as declarative YAML: loading, per-deployment overrides and validation.

The repository's `alerting/rules.yaml` holds the rules; a deployment changes thresholds or
timers, disables a rule or adds one in its own file named by `ALERT_RULES_PATH` (same format;
a rule with an existing name is merged field by field, `params` key by key). A YAML file only
chooses among rule *kinds* implemented in `alerting.kinds` and gives their parameters: no SQL
text ever comes from YAML. Everything is validated at load, and an error names the file, the
rule and the field, so a typo fails the sensor tick (and `opsdash alerts rules`) loudly instead
of silently never alerting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml  # type: ignore[import-untyped,unused-ignore]  # PyYAML comes with dagster and dbt
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from alerting.kinds import KINDS, RuleKind

DEFAULT_RULES_PATH = Path(__file__).with_name("rules.yaml")
RULES_PATH_ENV = "ALERT_RULES_PATH"
Severity = Literal["info", "warning", "critical"]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: Any) -> timedelta:
    """`90s`, `5m`, `4h`, `1d` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    raise ValueError(f"expected a duration like 30s, 5m, 4h or 1d, got {value!r}")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
GroupField = Literal["rule", "severity", "entity_type", "entity_id"]


def _by_rule() -> list[GroupField]:
    return ["rule"]


class Timers(BaseModel):
    """Alertmanager-style timers and switches, settable per rule or as defaults."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    for_: Duration = Field(default=timedelta(0), alias="for")
    group_by: list[GroupField] = Field(default_factory=_by_rule)
    group_wait: Duration = timedelta(seconds=30)
    group_interval: Duration = timedelta(minutes=1)
    repeat_interval: Duration = timedelta(hours=4)
    ack_timeout: Duration = timedelta(hours=24)
    send_resolved: bool = True


class Rule(Timers):
    """One alert rule: a kind (the SQL, in Python) with thresholds, severity and timers."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=60)
    kind: str
    severity: Severity
    entity_type: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    # Title of the one alert the first evaluation raises for already-matching entities.
    summary: str = "{count} already match"
    category: Literal["business", "pipeline"] = "business"
    # Which sensor evaluates it: after customer_health materializes, every minute, or only
    # when something raises it (the run-failure sensor).
    trigger: Literal["customer_health", "minute", "event"] = "minute"
    # Rules whose live alerts mute this one's notifications (stale data makes it wrong).
    inhibited_by: list[str] = Field(default_factory=list)
    enabled: bool = True
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _kind_known(self) -> Rule:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; known kinds: {', '.join(sorted(KINDS))}")
        if KINDS[self.kind].event_only != (self.trigger == "event"):
            wanted = "event" if KINDS[self.kind].event_only else "customer_health or minute"
            raise ValueError(f"kind {self.kind!r} needs trigger {wanted}")
        return self

    @property
    def rule_kind(self) -> RuleKind:
        return KINDS[self.kind]

    def kind_params(self) -> BaseModel:
        """The kind's parameters, validated (already checked once at load)."""
        return self.rule_kind.params.model_validate(self.params)

    def summary_title(self, count: int) -> str:
        return self.summary.replace("{count}", f"{count:,}")


class RulesFileError(ValueError):
    """A rules file cannot be used; the message names the file, the rule and the field."""


class RulesConfig(BaseModel):
    """The validated rule set in effect (repository file plus the deployment's override)."""

    rules: list[Rule]
    sources: list[str]

    def rule(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)

    @property
    def enabled(self) -> list[Rule]:
        return [r for r in self.rules if r.enabled]

    def triggered_by(self, trigger: str) -> list[Rule]:
        return [r for r in self.enabled if r.trigger == trigger]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise RulesFileError(f"{path}: alert rules file not found") from exc
    except yaml.YAMLError as exc:
        raise RulesFileError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or set(data) - {"defaults", "rules"}:
        raise RulesFileError(f"{path}: expected a mapping with the keys 'defaults' and 'rules'")
    if not isinstance(data.get("rules", []), list) or not isinstance(
        data.get("defaults", {}), dict
    ):
        raise RulesFileError(f"{path}: 'rules' must be a list and 'defaults' a mapping")
    return data


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(rule)"


def _validate(raw: Mapping[str, Any], defaults: Mapping[str, Any], source: Path) -> Rule:
    name = raw.get("name", "?")
    try:
        rule = Rule.model_validate({**defaults, **raw})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise RulesFileError(
            f"{source}: rule {name!r}, field {_field(err['loc'])!r}: {err['msg']}"
        ) from exc
    try:
        rule.kind_params()
    except ValidationError as exc:
        err = exc.errors()[0]
        raise RulesFileError(
            f"{source}: rule {name!r}, field {'params.' + _field(err['loc'])!r}: {err['msg']}"
        ) from exc
    return rule


def rules_path_override() -> Path | None:
    """The deployment's rules file (ALERT_RULES_PATH), if any."""
    value = os.environ.get(RULES_PATH_ENV, "").strip()
    return Path(value) if value else None


def load_rules(
    path: Path | None = None, override: Path | Literal[False] | None = None
) -> RulesConfig:
    """The repository rules merged with the deployment's override (None: ALERT_RULES_PATH,
    False: none). Raises `RulesFileError` naming the file, rule and field of the first problem.
    """
    base_path = path or DEFAULT_RULES_PATH
    override_path = rules_path_override() if override is None else (override or None)
    base = _read(base_path)
    defaults: dict[str, Any] = dict(base.get("defaults") or {})
    entries: dict[str, tuple[dict[str, Any], Path]] = {}
    sources = [base_path]
    layers: list[tuple[Path, dict[str, Any]]] = [(base_path, base)]
    if override_path is not None:
        layers.append((override_path, _read(override_path)))
        sources.append(override_path)
    for source, data in layers:
        if source is not base_path:
            defaults.update(data.get("defaults") or {})
        for index, raw in enumerate(data.get("rules") or []):
            if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
                raise RulesFileError(f"{source}: rule #{index + 1} needs a 'name'")
            known = entries.get(raw["name"])
            if known is not None and source is base_path:
                raise RulesFileError(f"{source}: rule {raw['name']!r} is defined twice")
            merged = dict(known[0]) if known else {}
            params = {**(merged.get("params") or {}), **(raw.get("params") or {})}
            merged.update(raw)
            if params:
                merged["params"] = params
            entries[raw["name"]] = (merged, source)
    try:
        Timers.model_validate(defaults)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise RulesFileError(
            f"{sources[-1]}: defaults, field {_field(err['loc'])!r}: {err['msg']}"
        ) from exc
    rules = [_validate(raw, defaults, source) for raw, source in entries.values()]
    names = {r.name for r in rules}
    for rule, (_raw, source) in zip(rules, entries.values(), strict=True):
        unknown = [n for n in rule.inhibited_by if n not in names]
        if unknown:
            raise RulesFileError(
                f"{source}: rule {rule.name!r}, field 'inhibited_by': unknown rule {unknown[0]!r}"
            )
    return RulesConfig(rules=rules, sources=[str(s) for s in sources])

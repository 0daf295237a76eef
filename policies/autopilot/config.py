"""Autopilot configuration: rebuild rules per deployment, from its settings and/or a YAML file.

One deployment's entry (the value of `settings["autopilot"]`, or of
`deployments.<name>` in the file) looks like:

    data: both            # ledger | source | both: what a retraining reads
    min_training_rows: 50
    rules:
      drift: {psi: 0.2, min_rows: 200, window: 500}
      metric: {metric: f1, floor: 0.6, max_drop: 0.1, days: 14, min_outcomes: 100, min_new_outcomes: 50}
      outcomes: {count: 1000}
      schedule: {days: 30}

A rule left out is off. The file's entry is laid over the deployment's settings, rule by
rule, so a file can tune one threshold and keep the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ledger.errors import InvalidCommand

DATA_MODES = ("source", "ledger", "both")
RULE_VERSIONS = {"drift": 1, "metric": 1, "outcomes": 1, "schedule": 1}
HIGHER_IS_BETTER = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "mae": False,
    "rmse": False,
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "drift": {"psi": 0.2, "min_rows": 200, "window": 500},
    "metric": {
        "metric": None,
        "floor": None,
        "max_drop": None,
        "days": 14,
        "min_outcomes": 100,
        "min_new_outcomes": 50,
    },
    "outcomes": {"count": 1000},
    "schedule": {"days": 30},
}
NUMBERS = {  # setting: (type, smallest allowed)
    "psi": (float, 0.0),
    "min_rows": (int, 1),
    "window": (int, 1),
    "days": (int, 1),
    "min_outcomes": (int, 1),
    "min_new_outcomes": (int, 1),
    "count": (int, 1),
}


def rule_id(name: str) -> str:
    """The actor and label of a rule: `rule:autopilot.drift@1`."""
    return f"rule:autopilot.{name}@{RULE_VERSIONS[name]}"


def load_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """The per-deployment entries of a YAML config file (`deployments: {name: entry}`)."""
    try:
        document = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise InvalidCommand(
            f"cannot read autopilot config {path}: {error}", field="config"
        ) from None
    entries = document.get("deployments") if isinstance(document, Mapping) else None
    if not isinstance(entries, Mapping):
        raise InvalidCommand(
            f"{path} needs a mapping `deployments: {{name: {{rules: ...}}}}`", field="config"
        )
    return {str(name): dict(entry or {}) for name, entry in entries.items()}


def effective(
    settings_entry: Mapping[str, Any] | None, file_entry: Mapping[str, Any] | None, where: str
) -> dict[str, Any] | None:
    """The deployment's configuration: settings overlaid by the file, checked, defaults filled in."""
    if not settings_entry and not file_entry:
        return None
    merged = {
        **(settings_entry or {}),
        **{k: v for k, v in (file_entry or {}).items() if k != "rules"},
    }
    rules = {**((settings_entry or {}).get("rules") or {})}
    for name, rule in ((file_entry or {}).get("rules") or {}).items():
        rules[name] = None if rule is None else {**(rules.get(name) or {}), **rule}
    merged["rules"] = rules
    return check(merged, where)


def check(entry: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate one deployment's entry; a message names the field to fix."""
    data = entry.get("data", "both")
    if data not in DATA_MODES:
        raise InvalidCommand(
            f"{where}: data must be one of {', '.join(DATA_MODES)}, not {data!r}", field="data"
        )
    rules = entry.get("rules") or {}
    if not isinstance(rules, Mapping):
        raise InvalidCommand(
            f"{where}: rules must be a mapping of rule name to its thresholds", field="rules"
        )
    unknown = sorted(set(rules) - set(RULE_VERSIONS))
    if unknown:
        raise InvalidCommand(
            f"{where}: unknown rules {', '.join(unknown)}; use {', '.join(RULE_VERSIONS)}",
            field="rules",
        )
    checked = {
        name: _rule(name, rule, where)
        for name, rule in rules.items()
        if rule is not None and (rule or {}).get("enabled", True) is not False
    }
    minimum = _number(entry.get("min_training_rows", 50), int, f"{where}: min_training_rows", 10)
    return {
        "enabled": entry.get("enabled", True) is not False,
        "data": data,
        "min_training_rows": minimum,
        "ledger_days": _days(entry.get("ledger_days"), where),
        "rules": checked,
    }


def _rule(name: str, rule: Any, where: str) -> dict[str, Any]:
    if not isinstance(rule, Mapping):
        raise InvalidCommand(
            f"{where}: rule {name} needs a mapping of thresholds", field=f"rules.{name}"
        )
    unknown = sorted(set(rule) - set(DEFAULTS[name]) - {"enabled"})
    if unknown:
        raise InvalidCommand(
            f"{where}: rule {name} has no setting {', '.join(unknown)}; "
            f"it takes {', '.join(DEFAULTS[name])}",
            field=f"rules.{name}",
        )
    merged = {**DEFAULTS[name], **{k: v for k, v in rule.items() if k != "enabled"}}
    for key, (kind, minimum) in NUMBERS.items():
        if key in merged:
            merged[key] = _number(merged[key], kind, f"{where}: rules.{name}.{key}", minimum)
    if name == "metric":
        _check_metric(merged, where)
    return merged


def _check_metric(rule: dict[str, Any], where: str) -> None:
    if rule["metric"] not in HIGHER_IS_BETTER:
        raise InvalidCommand(
            f"{where}: rules.metric.metric must be one of {', '.join(HIGHER_IS_BETTER)}",
            field="rules.metric.metric",
        )
    if rule["floor"] is None and rule["max_drop"] is None:
        raise InvalidCommand(
            f"{where}: rules.metric needs a floor (a ceiling for mae/rmse), a max_drop, or both",
            field="rules.metric",
        )
    for key in ("floor", "max_drop"):
        if rule[key] is not None:
            rule[key] = _number(rule[key], float, f"{where}: rules.metric.{key}", minimum=0)


def _number(value: Any, kind: type, label: str, minimum: float = 0) -> Any:
    field = label.split(": ", 1)[-1]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (kind is int and int(value) != value)
    ):
        raise InvalidCommand(
            f"{label} must be a {'whole ' if kind is int else ''}number, not {value!r}", field=field
        )
    if value < minimum:
        raise InvalidCommand(f"{label} must be at least {minimum}", field=field)
    return kind(value)


def _days(value: Any, where: str) -> int | None:
    return None if value is None else _number(value, int, f"{where}: ledger_days", 1)

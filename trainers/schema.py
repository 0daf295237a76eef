"""From specs to a deployment's typed input schema (ledger/domain/deployments.py's format)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.errors import SchemaMismatch
from trainers.spec import InvalidSpec, load_spec


def input_schema(*specs: Mapping[str, Any]) -> dict[str, Any]:
    """The union of the specs' features (and subject field), each name with one type."""
    loaded = [load_spec(s) for s in specs]
    features: dict[str, dict[str, Any]] = {}
    for spec in loaded:
        for f in spec["features"]:
            _merge(
                features,
                {
                    "name": f["name"],
                    "type": f["type"],
                    "nullable": f["nullable"],
                    "personal": f["personal"],
                },
            )
    subjects = {s["subject"] for s in loaded if s["subject"]}
    if len(subjects) > 1:
        raise InvalidSpec(
            f"the specs name different subject fields: {', '.join(sorted(subjects))}",
            field="subject",
        )
    subject = next(iter(subjects), None)
    if subject:
        _merge(features, {"name": subject, "type": "category", "nullable": False, "personal": True})
    return {"features": list(features.values()), "subject_field": subject}


deployment_schema = input_schema  # the name api/demo.py calls it by


def _merge(features: dict[str, dict[str, Any]], feature: dict[str, Any]) -> None:
    known = features.get(feature["name"])
    if known is None:
        features[feature["name"]] = feature
    elif known["type"] != feature["type"]:
        raise InvalidSpec(
            f"feature {feature['name']!r} is {known['type']} in one spec, {feature['type']} in another",
            field="features",
        )
    else:  # nullable or personal in any spec makes it so in the schema
        known["nullable"] = known["nullable"] or feature["nullable"]
        known["personal"] = known["personal"] or feature["personal"]


def deployment_for(
    *specs: Mapping[str, Any],
    name: str | None = None,
    outcome_maturity_days: int = 30,
    policy: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for Ledger.create_deployment (add `actor`) serving these specs' models."""
    loaded = [load_spec(s) for s in specs]
    first = loaded[0]
    if {s["task"] for s in loaded} != {first["task"]}:
        raise InvalidSpec("specs of one deployment must share a task", field="task")
    return {
        "name": name or first["deployment"] or first["name"],
        "task": first["task"],
        "schema": input_schema(*loaded),
        "policy": dict(policy or {"name": "manual"}),
        "positive_label": first["positive_label"],
        "outcome_maturity_days": outcome_maturity_days,
    }


def check_fits_schema(spec: Mapping[str, Any], schema: Mapping[str, Any], deployment: str) -> None:
    """Refuse a model whose features are absent from, or typed differently in, the schema."""
    declared = {f["name"]: f["type"] for f in schema["features"]}
    for f in spec["features"]:
        if f["name"] not in declared:
            raise SchemaMismatch(
                f"the model reads {f['name']!r}, which deployment {deployment!r} does not have"
            )
        if declared[f["name"]] != f["type"]:
            raise SchemaMismatch(
                f"the model reads {f['name']!r} as {f['type']}; deployment {deployment!r} declares {declared[f['name']]}"
            )

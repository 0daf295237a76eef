"""Check a real answer against the response schema the OpenAPI document gives for it."""

from __future__ import annotations

import functools
from typing import Any

import jsonschema_rs

from api.openapi import build_spec


def json_schema(node: Any) -> Any:
    """OpenAPI 3.0 to JSON Schema: `nullable: true` becomes "or null"."""
    if isinstance(node, list):
        return [json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    converted = {
        k: named(v) if k in ("properties", "schemas") else json_schema(v)
        for k, v in node.items()
        if k != "nullable"
    }
    return {"anyOf": [converted, {"type": "null"}]} if node.get("nullable") is True else converted


def named(schemas: dict[str, Any]) -> dict[str, Any]:
    """A map of names to schemas (properties, components): each value is a schema."""
    return {name: json_schema(schema) for name, schema in schemas.items()}


@functools.cache
def _validator(component: str) -> Any:
    components = json_schema(build_spec()["components"])
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{component}", "components": components}
    )


def assert_conforms(answer: Any, component: str) -> None:
    """Every field of the answer is one the spec describes, of the type it says."""
    errors = [f"{e.instance_path}: {e.message}" for e in _validator(component).iter_errors(answer)]
    assert not errors, "\n".join(errors[:10])

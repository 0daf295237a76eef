"""Row schemas generated from a deployment's typed input schema (cached per version).

JSON leaves no doubt about types, so the fields are strict: a number is a JSON number
(not a string, not a boolean), a category a string, a boolean true/false. `null` means
missing and is allowed only for nullable features; NaN and infinity are refused.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from marshmallow import RAISE, Schema, fields


class StrictNumber(fields.Field):
    """A finite JSON number."""

    default_error_messages = {"invalid": "Not a valid number.", "finite": "NaN and infinity are not allowed."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.make_error("finite")
        return value


class StrictInteger(fields.Field):
    """A JSON integer (an integral float such as 3.0 is taken as 3)."""

    default_error_messages = {"invalid": "Not a valid integer."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if not isinstance(value, int):
            raise self.make_error("invalid")
        return value


class StrictBoolean(fields.Field):
    """JSON true or false."""

    default_error_messages = {"invalid": "Not a valid boolean (use true or false)."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Category(fields.Field):
    """A JSON string; values the models never saw are scored and flagged, not refused."""

    default_error_messages = {"invalid": "Not a valid category (send a string)."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        return value


FIELD_BY_TYPE: dict[str, type[fields.Field]] = {
    "number": StrictNumber, "integer": StrictInteger, "category": Category, "boolean": StrictBoolean,
}


def row_schema(name: str, input_schema: dict[str, Any]) -> Schema:
    """A schema for one row of features; unknown fields are refused."""
    declared = {}
    for feature in input_schema["features"]:
        nullable = bool(feature.get("nullable"))
        declared[feature["name"]] = FIELD_BY_TYPE[feature["type"]](
            required=not nullable, allow_none=nullable,
            metadata={"personal": bool(feature.get("personal"))},
        )
    schema_class = Schema.from_dict(declared, name=f"{name}_features")
    return schema_class(unknown=RAISE)


class RowSchemas:
    """One generated schema per (deployment, version), built on first use."""

    def __init__(self, max_entries: int = 256):
        self._schemas: dict[tuple[str, int], Schema] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, name: str, version: int, input_schema: dict[str, Any]) -> Schema:
        key = (name, version)
        schema = self._schemas.get(key)
        if schema is None:
            with self._lock:
                if len(self._schemas) >= self._max:
                    self._schemas.clear()
                schema = self._schemas[key] = row_schema(name, input_schema)
        return schema

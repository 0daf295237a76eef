"""Row schemas generated from a deployment's typed input schema (cached per version).

JSON leaves no doubt about types, so the fields are strict: a number is a JSON number
(not a string, not a boolean), a category a string, a boolean true/false. `null` means
missing and is allowed only for nullable features; NaN and infinity are refused.
"""

from __future__ import annotations

import math
import threading
from typing import Any, cast

from marshmallow import RAISE, Schema, fields


class StrictNumber(fields.Field):
    """A finite JSON number."""

    default_error_messages = {
        "invalid": "Not a valid number.",
        "finite": "NaN and infinity are not allowed.",
    }

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
    "number": StrictNumber,
    "integer": StrictInteger,
    "category": Category,
    "boolean": StrictBoolean,
}


class RowSchema(Schema):
    """A generated row schema whose batches of valid rows skip marshmallow's per-field machinery.

    Rows are first checked in one plain loop against the same rules the fields enforce; only
    when a row breaks one does the whole batch go through marshmallow, so every error answer
    is marshmallow's own. A valid batch loads to exactly what marshmallow would return.
    """

    checks: tuple[tuple[str, Any], ...] = ()  # (field name, value check) in declared order
    names: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()

    def load(
        self, data: Any, *, many: bool | None = None, partial: Any = None, unknown: Any = None
    ) -> Any:
        many = self.many if many is None else many
        if partial is None and unknown is None and self.unknown == RAISE:
            loaded = (
                self._fast_load(data if many else [data])
                if many or isinstance(data, dict)
                else None
            )
            if loaded is not None:
                return loaded if many else loaded[0]
        return super().load(data, many=many, partial=partial, unknown=unknown)

    def _fast_load(self, rows: Any) -> list[dict[str, Any]] | None:
        """The loaded rows, or None as soon as one row needs marshmallow's error answer."""
        if type(rows) is not list:
            return None
        names, required, checks, loaded = self.names, self.required, self.checks, []
        for row in rows:
            if type(row) is not dict or not row.keys() <= names or not required <= row.keys():
                return None
            out = {}
            for name, check in checks:
                if name in row:
                    value = check(row[name])
                    if value is _INVALID:
                        return None
                    out[name] = value
            loaded.append(out)
        return loaded


_INVALID = object()


def _number(value: Any) -> Any:
    kind = type(value)
    return value if kind is int or (kind is float and math.isfinite(value)) else _INVALID


def _integer(value: Any) -> Any:
    kind = type(value)
    if kind is int:
        return value
    return int(value) if kind is float and math.isfinite(value) and value.is_integer() else _INVALID


def _category(value: Any) -> Any:
    return value if type(value) is str else _INVALID


def _boolean(value: Any) -> Any:
    return value if type(value) is bool else _INVALID


CHECK_BY_TYPE = {"number": _number, "integer": _integer, "category": _category, "boolean": _boolean}


def _nullable(check: Any) -> Any:
    return lambda value: None if value is None else check(value)


def row_schema(name: str, input_schema: dict[str, Any]) -> Schema:
    """A schema for one row of features; unknown fields are refused."""
    declared, checks = {}, []
    for feature in input_schema["features"]:
        nullable = bool(feature.get("nullable"))
        declared[feature["name"]] = FIELD_BY_TYPE[feature["type"]](
            required=not nullable,
            allow_none=nullable,
            metadata={"personal": bool(feature.get("personal"))},
        )
        check = CHECK_BY_TYPE[feature["type"]]
        checks.append((feature["name"], _nullable(check) if nullable else check))
    # from_dict subclasses the class it is called on.
    schema_class = cast(type[RowSchema], RowSchema.from_dict(declared, name=f"{name}_features"))
    schema_class.checks = tuple(checks)
    schema_class.names = frozenset(declared)
    schema_class.required = frozenset(n for n, f in declared.items() if f.required)
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

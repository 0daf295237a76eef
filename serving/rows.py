"""Row schemas generated from a deployment's typed input schema (cached per version).

JSON leaves no doubt about types, so the fields are strict: a number is a JSON number
(not a string, not a boolean), a category a string, a boolean true/false. `null` means
missing and is allowed only for nullable features. Each field also holds its values to
what the ledger can store (ledger.values): numbers within ±(2^53 - 1), text without NUL
and at most the feature's `max_length` characters.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, cast

from marshmallow import RAISE, Schema, ValidationError, fields, missing

from ledger import values

if TYPE_CHECKING:  # imported where used: the serving path need not load scipy for it
    from policies.quality import CheckedRows


SAFE = values.SAFE_MAX
SAFE_FLOAT = float(SAFE)  # exact: a float compared with a float is the fast comparison


class StrictNumber(fields.Field):
    """A finite JSON number within ±(2^53 - 1); -0.0 is taken as 0.0."""

    default_error_messages = {
        "invalid": "Not a valid number.",
        "finite": "NaN and infinity are not allowed.",
        "range": f"The number is beyond ±{SAFE:,} (2^53 - 1), the range stored exactly.",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> float | int:
        kind = type(value)  # JSON's own types only: bool is no number here
        if kind is float:
            if -SAFE_FLOAT <= value <= SAFE_FLOAT:  # False for NaN
                return value or 0.0  # one zero: jsonb gives -0.0 back as 0
            raise self.make_error("range" if math.isfinite(value) else "finite")
        if kind is int:
            if -SAFE <= value <= SAFE:
                return value
            raise self.make_error("range")
        raise self.make_error("invalid")


class StrictInteger(fields.Field):
    """A JSON integer within ±(2^53 - 1) (an integral float such as 3.0 is taken as 3)."""

    default_error_messages = {
        "invalid": "Not a valid integer.",
        "range": StrictNumber.default_error_messages["range"],
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        kind = type(value)
        if kind is int or (kind is float and math.isfinite(value) and value.is_integer()):
            if -SAFE <= value <= SAFE:
                return int(value)
            raise self.make_error("range")
        raise self.make_error("invalid")


class StrictBoolean(fields.Field):
    """JSON true or false."""

    default_error_messages = {"invalid": "Not a valid boolean (use true or false)."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if type(value) is not bool:
            raise self.make_error("invalid")
        return value


class Category(fields.Field):
    """A JSON string of at most `max_length` characters that the ledger can store; values the
    models never saw are scored and flagged, not refused."""

    default_error_messages = {
        "invalid": "Not a valid category (send a string).",
        "unstorable": "The category {why}.",
    }

    def __init__(self, *, max_length: int = values.TEXT_MAX, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if type(value) is not str:
            raise self.make_error("invalid")
        if not value.isascii() or len(value) > self.max_length or "\x00" in value:
            why = values.text_fault(value, self.max_length)  # the exact rule, off the fast path
            if why is not None:
                raise self.make_error("unstorable", why=why)
        return value


FIELD_BY_TYPE: dict[str, type[fields.Field]] = {
    "number": StrictNumber,
    "integer": StrictInteger,
    "category": Category,
    "boolean": StrictBoolean,
}


class RowSchema(Schema):
    """A generated row schema whose batches of valid rows skip marshmallow's per-field machinery.

    The bulk loader is derived from the schema's own load fields (`bulk_loader`): each value
    goes through its field's `_deserialize`, the field class's one definition of what it
    takes. Only when a row breaks a rule does the whole batch go through marshmallow, so every
    error answer is marshmallow's own; a valid batch loads to exactly what marshmallow returns.

    Marshmallow nests a value whose key holds a dot ({"a": {"b": v}}), so a feature named
    "a.b" is declared under a dot-free key reading "a.b" (`data_key`) and renamed back once
    loaded, whichever path loaded it (`renamed`: declared key -> feature name).
    """

    renamed: dict[str, str] = {}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._bulk = bulk_loader(self)
        self._columns = column_loader(self)

    def load(
        self, data: Any, *, many: bool | None = None, partial: Any = None, unknown: Any = None
    ) -> Any:
        many = self.many if many is None else many
        loaded: Any = None
        if self._bulk is not None and partial is None and unknown is None:
            if many and self._columns is not None and type(data) is list and len(data) > 1:
                loaded = self._columns(data)
            else:
                loaded = (
                    self._bulk(data if many else [data]) if many or type(data) is dict else None
                )
            if loaded is not None and not many:
                loaded = loaded[0]
        if loaded is None:
            loaded = super().load(data, many=many, partial=partial, unknown=unknown)
        return self.named(loaded, many) if self.renamed else loaded

    def named(self, loaded: Any, many: bool) -> Any:
        """Loaded rows under their features' names."""
        renamed = self.renamed
        rows = [
            {renamed.get(k, k): v for k, v in row.items()} for row in (loaded if many else [loaded])
        ]
        return rows if many else rows[0]

    def _fast_load(self, rows: Any) -> list[dict[str, Any]] | None:
        """The loaded rows, or None when marshmallow must answer (or the schema has no bulk path)."""
        return None if self._bulk is None else self._bulk(rows)


# Field classes whose `_deserialize` is a pure check of one JSON value: the bulk loader may
# call it directly. Any other field (or a validator, a hook, a default) leaves the schema to
# marshmallow alone.
BULK_FIELDS = frozenset(FIELD_BY_TYPE.values())


Plan = list[tuple[str, str, Callable[..., Any], bool]]


def load_plan(schema: Schema) -> tuple[Plan, set[str]] | None:
    """(read key, write key, the field's `_deserialize`, nullable) per load field, and the
    required read keys; None when some field needs marshmallow's own machinery."""
    if schema.unknown != RAISE or any(schema._hooks[tag] for tag in schema._hooks):
        return None
    plan: Plan = []
    required = set()
    for name, field in schema.load_fields.items():
        read, write = name if field.data_key is None else field.data_key, field.attribute or name
        if not _bulk_ready(write, field):
            return None
        plan.append((read, write, field._deserialize, field.allow_none))
        if field.required:
            required.add(read)
    return plan, required


def bulk_loader(schema: Schema) -> Callable[[Any], list[dict[str, Any]] | None] | None:
    """A loader of valid batches built from the schema's load fields, or None if it cannot be."""
    planned = load_plan(schema)
    if planned is None:
        return None
    plan, required = planned
    names = frozenset(read for read, *_ in plan)

    def load(rows: Any) -> list[dict[str, Any]] | None:
        if type(rows) is not list:
            return None
        loaded = []
        for row in rows:
            if type(row) is not dict or not row.keys() <= names or not required <= row.keys():
                return None
            out: dict[str, Any] = {}
            for read, write, deserialize, nullable in plan:
                if read in row:
                    value = row[read]
                    if value is None:
                        if not nullable:
                            return None
                        out[write] = None
                        continue
                    try:
                        out[write] = deserialize(value, read, row)
                    except ValidationError:
                        return None
            loaded.append(out)
        return loaded

    return load


_ABSENT = object()


def column_loader(schema: Schema) -> Callable[[list[Any]], list[dict[str, Any]] | None] | None:
    """The bulk loader's plan applied a column at a time: for a big batch, one pass per field.

    Each value still goes through its field's `_deserialize` (mapped over the column in C),
    so what a row may hold has the one definition; any row that breaks a rule, or a batch
    whose rows are not all objects of known keys, returns None and marshmallow answers.
    Rows come out as the bulk loader makes them: fields in schema order, absent keys absent.
    """
    planned = load_plan(schema)
    if planned is None:
        return None
    plan, required = planned
    names = frozenset(read for read, *_ in plan)
    writes = [write for _, write, *_ in plan]

    def load(rows: list[Any]) -> list[dict[str, Any]] | None:
        full = True  # every row holds every field: rows zip straight from the columns
        for row in rows:
            if type(row) is not dict:
                return None
            keys = row.keys()
            if not keys <= names or not required <= keys:
                return None
            if len(row) != len(names):
                full = False
        columns = []
        for read, _, deserialize, nullable in plan:
            column = (
                [row[read] for row in rows] if full else [row.get(read, _ABSENT) for row in rows]
            )
            try:
                if None in column or not full:
                    if not nullable and None in column:
                        return None
                    column = [
                        v if v is None or v is _ABSENT else deserialize(v, read, row)
                        for v, row in zip(column, rows, strict=True)
                    ]
                else:
                    column = list(map(deserialize, column, repeat(read), rows))
            except ValidationError:
                return None
            columns.append(column)
        if full:
            return [dict(zip(writes, values, strict=True)) for values in zip(*columns, strict=True)]
        return [
            {w: v for w, v in zip(writes, values, strict=True) if v is not _ABSENT}
            for values in zip(*columns, strict=True)
        ]

    return load


def _bulk_ready(key: str, field: fields.Field) -> bool:
    """True when Field.deserialize would add nothing to the field's own `_deserialize`."""
    return (
        type(field) in BULK_FIELDS
        and not (field.validators or field.pre_load or field.post_load)
        and field.load_default is missing
        and "." not in key  # marshmallow nests the value of a dotted key: {"a": {"b": v}}
    )


def row_schema(name: str, input_schema: dict[str, Any]) -> Schema:
    """A schema for one row of features; unknown fields are refused."""
    names = [feature["name"] for feature in input_schema["features"]]
    keys = dot_free_keys(names)
    declared = {
        key: feature_field(key, feature)
        for key, feature in zip(keys, input_schema["features"], strict=True)
    }
    schema_class = cast(type[RowSchema], RowSchema.from_dict(declared, name=f"{name}_features"))
    schema_class.renamed = {k: n for k, n in zip(keys, names, strict=True) if k != n}
    return schema_class(unknown=RAISE)


def feature_field(key: str, feature: dict[str, Any]) -> fields.Field:
    """The field of one feature, declared under `key`."""
    extra = {"max_length": feature.get("max_length", values.TEXT_MAX)}
    return FIELD_BY_TYPE[feature["type"]](
        data_key=None if key == feature["name"] else feature["name"],
        required=not feature.get("nullable"),
        allow_none=bool(feature.get("nullable")),
        metadata={"personal": bool(feature.get("personal"))},
        **(extra if feature["type"] == "category" else {}),
    )


def dot_free_keys(names: list[str]) -> list[str]:
    """Each name, or for one holding a dot a key that holds none and is no other's."""
    taken, keys = set(names), []
    for name in names:
        key = name
        while "." in key or (key != name and key in taken):
            key = "_" + key.replace(".", "_")
        taken.add(key)
        keys.append(key)
    return keys


def checked_rows(input_schema: dict[str, Any], rows: Sequence[Any]) -> CheckedRows:
    """Each row loaded as a prediction's would be, or its field errors: a bad row never stops
    the others (what a quality check of a batch counts).

    Personal features may be left out: no check reads them, and a batch need not carry them.
    """
    from policies.quality import CheckedRows

    features = [
        {**f, "nullable": True} if f.get("personal") else f for f in input_schema["features"]
    ]
    schema = row_schema("checked", {**input_schema, "features": features})
    try:
        return CheckedRows(schema.load(list(rows), many=True), {})
    except ValidationError as error:
        messages = cast(dict[int, Any], error.messages)
    loaded: list[Any] = [None if i in messages else schema.load(r) for i, r in enumerate(rows)]
    return CheckedRows(loaded, {i: _field_errors(m) for i, m in messages.items()})


def _field_errors(messages: Any) -> dict[str, str]:
    """marshmallow's messages for one row as {field: message} (the whole row: "row")."""
    if not isinstance(messages, dict):
        return {"row": str(messages)}
    return {
        "row" if name == "_schema" else str(name): " ".join(map(str, text))
        if isinstance(text, list)
        else str(text)
        for name, text in messages.items()
    }


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

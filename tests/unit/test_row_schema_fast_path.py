"""The row schema's bulk loader answers exactly as marshmallow does, valid batch or not.

The bulk loader is generated from the schema's fields; these properties hold it to
marshmallow's own load on random schemas and rows, edge values included: whatever it
accepts loads to marshmallow's output, and whatever marshmallow refuses it leaves to it.
"""

from __future__ import annotations

import math
from typing import Any
from unittest.mock import ANY

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, post_load, validate

from api.schemas.predictions import Rows
from serving.requests import PredictionRequestSchema
from serving.rows import FIELD_BY_TYPE, RowSchema, RowSchemas, column_loader, row_schema

SCHEMA = {
    "features": [
        {"name": "age", "type": "number", "nullable": True},
        {"name": "income", "type": "number"},
        {"name": "plan", "type": "category", "nullable": True},
        {"name": "active", "type": "boolean", "nullable": True},
        {"name": "visits", "type": "integer", "nullable": True},
        {"name": "count", "type": "integer"},
        {"name": "customer", "type": "category", "personal": True, "nullable": True},
    ],
    "subject_field": "customer",
}
NAMES = [f["name"] for f in SCHEMA["features"]]
ROW = {
    "age": 41.0,
    "income": 52000,
    "plan": "basic",
    "active": True,
    "visits": 3.0,
    "count": 2,
    "customer": "c-1",
}

# What ledger.values refuses, and what sits just inside it: each field checks it alike.
SAFE = 2**53 - 1
edge_values = st.one_of(
    st.sampled_from(
        [
            "a\x00b",
            "\x00",
            "\ud800",
            "x\udfff",
            "x" * 1000,
            "x" * 1001,
            "é" * 1001,
            "ok ✓",
            1e20,
            -1e20,
            SAFE,
            -SAFE,
            SAFE + 1,
            -SAFE - 1,
            float(SAFE),
            float(SAFE + 1),
            2**64,
            10**4000,
            1e-320,
            5e-324,
            -0.0,
        ]
    ),
    st.text(st.sampled_from("a\x00\ud800é"), max_size=4),
    st.integers(SAFE - 2, SAFE + 2),
    st.floats(1e15, 1e17),
)
values = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    st.sampled_from(
        [3.0, -0.0, 1e300, 2**53 + 1.0, 10**400, -(10**400), 0, 1, True, False, "1", "true", ""]
    ),
    st.sampled_from([{"nested": {"a": 1}}, [None], {"value": 1.0}, b"bytes", (1, 2)]),
    edge_values,
)
rows = st.one_of(
    st.dictionaries(st.sampled_from([*NAMES, "colour", "request_id"]), values, max_size=9),
    st.builds(
        lambda changes: {**ROW, **changes},
        st.dictionaries(st.sampled_from(NAMES), values, max_size=2),
    ),
    st.just(ROW),
    values,
)


def answer(load: Any, batch: Any) -> tuple[str, Any]:
    try:
        return "ok", load(batch)
    except ValidationError as error:
        return "error", error.messages


@settings(max_examples=400, deadline=None)
@given(st.lists(rows, max_size=4))
def test_a_batch_loads_or_fails_exactly_as_marshmallow_would(batch: list[Any]) -> None:
    schema = row_schema("churn", SCHEMA)
    fast = answer(lambda b: schema.load(b, many=True), batch)
    slow = answer(lambda b: Schema.load(schema, b, many=True), batch)
    assert fast == slow
    if fast[0] == "ok":  # same values, same types (3.0 for an integer is 3), same key order
        assert [[(k, type(v)) for k, v in r.items()] for r in fast[1]] == [
            [(k, type(v)) for k, v in r.items()] for r in slow[1]
        ]


@settings(max_examples=100, deadline=None)
@given(rows)
def test_one_row_loads_or_fails_exactly_as_marshmallow_would(row: Any) -> None:
    schema = row_schema("churn", SCHEMA)
    assert answer(schema.load, row) == answer(lambda r, s=schema: Schema.load(s, r), row)


def test_the_schema_is_built_once_per_deployment_version() -> None:
    schemas = RowSchemas()
    assert schemas.get("churn", 3, SCHEMA) is schemas.get("churn", 3, SCHEMA)
    assert schemas.get("churn", 4, SCHEMA) is not schemas.get("churn", 3, SCHEMA)


def test_valid_rows_take_the_bulk_check_and_bad_ones_leave_it() -> None:
    schema = row_schema("churn", SCHEMA)
    assert schema._fast_load([ROW, {"income": 1.5, "count": 2}]) == [
        {**ROW, "visits": 3},
        {"income": 1.5, "count": 2},
    ]
    assert schema._fast_load([ROW, {**ROW, "income": "x"}]) is None


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.lists(st.one_of(rows, st.dictionaries(st.integers(), st.integers(), max_size=1))), values
    )
)
def test_a_batch_body_loads_or_fails_as_a_list_of_dicts_would(instances: Any) -> None:
    plain = Schema.from_dict(
        {
            "instances": fields.List(
                fields.Dict(keys=fields.String()), validate=validate.Length(min=1)
            )
        }
    )()
    ours = Schema.from_dict({"instances": Rows(validate=validate.Length(min=1))})()
    assert answer(ours.load, {"instances": instances}) == answer(
        plain.load, {"instances": instances}
    )


def loaded_or_refused(schema: Schema, batch: Any) -> tuple[str, Any]:
    """Marshmallow's own answer, with each loaded value's type (3 and 3.0 are equal)."""
    try:
        rows = Schema.load(schema, batch, many=True)
    except ValidationError as error:
        return "error", error.messages
    return "ok", typed(rows)


def typed(rows: list[dict[str, Any]]) -> list[list[tuple[str, Any, type]]]:
    return [[(k, v, type(v)) for k, v in r.items()] for r in rows]


feature_names = st.one_of(
    st.sampled_from(["a", "b", "c", "a.b", "_a_b", "x.y.z"]), st.text(min_size=1, max_size=3)
)


def category_bound(feature: dict[str, Any]) -> dict[str, Any]:
    """The feature, its `max_length` kept only if it is a category (only they have one)."""
    if feature["type"] == "category":
        return feature
    return {k: v for k, v in feature.items() if k != "max_length"}


input_schemas = st.lists(
    st.fixed_dictionaries(
        {"name": feature_names, "type": st.sampled_from(sorted(FIELD_BY_TYPE))},
        optional={
            "nullable": st.booleans(),
            "personal": st.booleans(),
            "max_length": st.integers(1, 4),
        },
    ).map(category_bound),
    min_size=1,
    max_size=5,
    unique_by=lambda f: f["name"],
)


@st.composite
def schema_and_batch(draw: st.DrawFn) -> tuple[dict[str, Any], Any]:
    features = draw(input_schemas)
    names = [f["name"] for f in features]
    valid = {
        "number": st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
        "integer": st.one_of(st.integers(), st.integers(-(2**60), 2**60).map(float)),
        "category": st.text(max_size=3),
        "boolean": st.booleans(),
    }
    if draw(st.booleans()):  # edge values too: whatever the fields accept must load alike
        valid = {name: st.one_of(v, edge_values) for name, v in valid.items()}
    good_row = st.fixed_dictionaries(
        {f["name"]: valid[f["type"]] for f in features if not f.get("nullable")},
        optional={
            f["name"]: st.one_of(st.none(), valid[f["type"]]) for f in features if f.get("nullable")
        },
    )
    any_row = st.dictionaries(
        st.one_of(st.sampled_from([*names, "unknown"]), st.integers(0, 2)), values, max_size=6
    )
    spoilt_row = st.builds(
        lambda row, bad: {**row, **bad},
        good_row,
        st.dictionaries(st.sampled_from(names), values, max_size=1),
    )
    rows = st.one_of(good_row, good_row, spoilt_row, any_row, values)
    batch = draw(st.one_of(st.lists(rows, max_size=4), values))
    return {"features": features}, batch


@settings(max_examples=500, deadline=None)
@given(schema_and_batch())
def test_the_generated_loader_accepts_only_what_marshmallow_loads_and_loads_it_alike(
    case: tuple[dict[str, Any], Any],
) -> None:
    input_schema, batch = case
    schema = row_schema("any", input_schema)
    expected = loaded_or_refused(schema, batch)
    fast = schema._fast_load(batch)
    if expected[0] == "error":
        assert fast is None  # marshmallow refuses: the bulk loader leaves the answer to it
    elif fast is not None:
        assert ("ok", typed(fast)) == expected
    assert answer(lambda b: schema.load(b, many=True), batch) == answer(
        lambda b: schema.named(Schema.load(schema, b, many=True), many=True), batch
    )


def test_a_dotted_feature_name_loads_flat_on_either_path() -> None:
    dotted = row_schema(
        "any", {"features": [{"name": "a.b", "type": "number"}, {"name": "a", "type": "integer"}]}
    )
    assert dotted._fast_load([{"a.b": 1.5, "a": 2.0}]) == [{"_a_b": 1.5, "a": 2}]
    assert dotted.load({"a.b": 1.5, "a": 2.0}) == {"a.b": 1.5, "a": 2}
    assert dotted.load([{"a.b": 1.5, "a": 2}], many=True) == [{"a.b": 1.5, "a": 2}]
    assert dotted.load(({"a.b": 1.5, "a": 2},), many=True) == [
        {"a.b": 1.5, "a": 2}
    ]  # marshmallow's
    assert answer(dotted.load, {"a.b": "x", "a": 2}) == (
        "error",
        {"a.b": ["Not a valid number."]},
    )


def test_valid_rows_of_any_field_type_take_the_bulk_loader() -> None:
    features = [{"name": t, "type": t} for t in FIELD_BY_TYPE] + [
        {"name": f"{t}?", "type": t, "nullable": True} for t in FIELD_BY_TYPE
    ]
    row = {"number": 1.5, "integer": 2.0, "category": "x", "boolean": False, "number?": None}
    assert row_schema("any", {"features": features})._fast_load([row]) == [
        {"number": 1.5, "integer": 2, "category": "x", "boolean": False, "number?": None}
    ]


def test_what_the_bulk_loader_cannot_reproduce_is_left_to_marshmallow() -> None:
    class Hooked(RowSchema):
        x = FIELD_BY_TYPE["number"](required=True)

        @post_load
        def double(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            return {"x": data["x"] * 2}

    validated = RowSchema.from_dict(
        {"x": FIELD_BY_TYPE["number"](required=True, validate=validate.Range(max=1))}
    )()
    defaulted = RowSchema.from_dict({"x": FIELD_BY_TYPE["number"](load_default=0)})()
    plain = RowSchema.from_dict({"x": fields.Float(required=True)})()
    nesting = RowSchema.from_dict({"x": FIELD_BY_TYPE["number"](attribute="a.x")})()
    for schema, row in [
        (nesting, {"x": 2}),
        (Hooked(), {"x": 2}),
        (validated, {"x": 2}),
        (defaulted, {}),
        (plain, {"x": 2}),
    ]:
        assert schema._fast_load([row]) is None
        assert answer(schema.load, row) == answer(lambda r, s=schema: Schema.load(s, r), row)


def test_the_fields_hold_values_to_what_the_ledger_stores() -> None:
    schema = row_schema(
        "edge",
        {
            "features": [
                {"name": "n", "type": "number", "nullable": True},
                {"name": "i", "type": "integer", "nullable": True},
                {"name": "c", "type": "category", "nullable": True, "max_length": 3},
                {"name": "d", "type": "category", "nullable": True},
            ]
        },
    )
    for row in [
        {"n": 1e20},
        {"n": SAFE + 1},
        {"i": 1e20},
        {"i": float(SAFE + 1)},
        {"c": "abcd"},
        {"c": "a\x00"},
        {"d": "x" * 1001},
        {"d": "\ud800"},
    ]:
        (field,) = row
        assert answer(schema.load, row)[0] == "error", row
        assert answer(lambda r: schema.load([r], many=True), row)[1] == {0: {field: ANY}}
    loaded = schema.load({"n": -0.0, "i": float(SAFE), "c": "abc", "d": "x" * 1000})
    assert loaded == {"n": 0.0, "i": SAFE, "c": "abc", "d": "x" * 1000}
    assert math.copysign(1, loaded["n"]) == 1  # one zero: jsonb gives -0.0 back as 0
    assert schema.load({"n": 1e-320, "i": -SAFE}) == {"n": 1e-320, "i": -SAFE}


@settings(max_examples=500, deadline=None)
@given(schema_and_batch())
def test_the_column_loader_loads_what_marshmallow_loads_and_leaves_the_rest_to_it(
    case: tuple[dict[str, Any], Any],
) -> None:
    input_schema, batch = case
    schema = row_schema("any", input_schema)
    columns = column_loader(schema)
    assert columns is not None
    if type(batch) is not list:
        return  # RowSchema.load hands only lists to it
    expected = loaded_or_refused(schema, batch)
    loaded = columns(batch)
    if expected[0] == "error":
        assert loaded is None
    else:  # every valid batch is loaded column-wise, to what marshmallow loads
        assert ("ok", typed(loaded)) == expected  # type: ignore[arg-type]


# -- the request body: one row skips marshmallow, and answers as it would ---------------------
request_ids = st.one_of(
    st.text(max_size=3),
    st.sampled_from(["r-1", "", "x" * 200, "x" * 201, "a\x00b", "\ud800", 7, None, b"r-1"]),
    values,
)
features_values = st.one_of(
    st.dictionaries(st.text(max_size=2), values, max_size=3),
    st.just(ROW),
    st.dictionaries(st.integers(), st.integers(), max_size=1),
    values,
)
request_bodies = st.one_of(
    st.fixed_dictionaries({"request_id": request_ids, "features": features_values}),
    st.dictionaries(
        st.sampled_from(["request_id", "features", "instances", "occurred_at", "extra"]),
        st.one_of(request_ids, features_values, st.lists(features_values, max_size=2)),
        max_size=4,
    ),
    values,
)


@settings(max_examples=500, deadline=None)
@given(request_bodies)
def test_a_request_body_loads_or_fails_exactly_as_marshmallow_would(body: Any) -> None:
    schema = PredictionRequestSchema()
    fast = answer(schema.load, body)
    assert fast == answer(lambda b: Schema.load(schema, b), body)
    if fast[0] == "ok" and "features" in fast[1]:
        assert fast[1]["features"] is not body["features"]  # a copy, as Dict makes


def test_a_well_formed_single_row_takes_the_one_row_path() -> None:
    schema = PredictionRequestSchema()
    body = {"request_id": "r-1", "features": ROW}
    assert schema.one_row(body) == {"request_id": "r-1", "features": ROW}
    assert schema.one_row({**body, "request_id": ""}) is None
    assert schema.one_row({**body, "instances": [ROW]}) is None
    assert schema.one_row({"request_id": "r-1", "instances": [ROW]}) is None

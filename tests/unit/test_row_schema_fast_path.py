"""The row schema's bulk check answers exactly as marshmallow does, valid batch or not."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, validate

from api.schemas.predictions import Rows
from serving.rows import RowSchemas, row_schema

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

values = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    st.sampled_from([3.0, -0.0, 1e300, 2**53 + 1.0]),
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
    assert answer(schema.load, row) == answer(lambda r: Schema.load(schema, r), row)


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

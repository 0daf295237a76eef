"""Prediction bodies: one row or a batch in, one answer per row out, and the provenance."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

REQUEST_ID = validate.Length(min=1, max=200)


class Rows(fields.List):
    """A list of JSON objects; a batch of well-formed rows skips the per-row field machinery.

    Only when some row is not an object with string keys does the list go through
    `List(Dict(keys=String()))`, whose error answer is then the one given.
    """

    def __init__(self, **kwargs: Any):
        super().__init__(fields.Dict(keys=fields.String()), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[dict[str, Any]]:
        if type(value) is list and all(type(row) is dict and all(type(k) is str for k in row) for row in value):
            return [dict(row) for row in value]  # copies, as Dict would make
        return super()._deserialize(value, attr, data, **kwargs)


class PredictionRequestSchema(Schema):
    """`{"features": {...}, "request_id": ...}` or `{"instances": [{...}], "request_id": ...}`."""

    class Meta:
        unknown = RAISE

    request_id = fields.String(required=True, validate=REQUEST_ID)
    features = fields.Dict(keys=fields.String())
    instances = Rows(validate=validate.Length(min=1))

    @validates_schema
    def check_one_shape(self, data: dict, **_: object) -> None:
        if ("features" in data) == ("instances" in data):
            raise ValidationError("send either features (one row) or instances (a batch)", "features")


class PredictionResultSchema(Schema):
    """One scored row as served."""

    prediction_id = fields.String()
    request_id = fields.String()
    model_id = fields.String()
    value = fields.Raw()
    probabilities = fields.Dict(keys=fields.String(), values=fields.Float(), allow_none=True)
    flags = fields.List(fields.String())
    retried = fields.Boolean(metadata={"description": "true when this is the original of a retried request"})


class BatchResultSchema(Schema):
    """A batch: one result per row, in order."""

    request_id = fields.String()
    predictions = fields.List(fields.Nested(PredictionResultSchema))


class ProvenanceSchema(Schema):
    """Everything about one prediction (nested parts are documents of their own)."""

    prediction_id = fields.String()
    deployment = fields.String()
    request_id = fields.String()
    features = fields.Dict()
    sealed_fields = fields.List(fields.String())
    outputs = fields.Dict()
    served = fields.Dict()
    shadow = fields.List(fields.Dict())
    policy = fields.Dict()
    leader = fields.Dict(allow_none=True)
    deployment_version = fields.Integer()
    flags = fields.List(fields.String())
    scoring = fields.Dict()
    caller = fields.String()
    outcome = fields.Dict(allow_none=True)
    outcomes = fields.List(fields.Dict())
    position = fields.Integer()
    recorded_at = fields.String()
    chain = fields.Dict()
    as_of_position = fields.Integer(allow_none=True)

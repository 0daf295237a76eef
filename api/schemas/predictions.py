"""Prediction bodies: one row or a batch in, one answer per row out, and the provenance."""

from __future__ import annotations

from marshmallow import Schema, fields

from serving.requests import REQUEST_ID, PredictionRequestSchema, Rows  # noqa: F401 - the spec names them here


class PredictionResultSchema(Schema):
    """One scored row as served."""

    prediction_id = fields.String()
    request_id = fields.String()
    model_id = fields.String()
    value = fields.Raw()
    probabilities = fields.Dict(keys=fields.String(), values=fields.Float(), allow_none=True)
    flags = fields.List(fields.String())
    retried = fields.Boolean(
        metadata={"description": "true when this is the original of a retried request"}
    )


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
    client = fields.String(
        metadata={"description": "the client whose request id it is (its key's client)"}
    )
    outcome = fields.Dict(allow_none=True)
    outcomes = fields.List(fields.Dict())
    position = fields.Integer()
    recorded_at = fields.String()
    chain = fields.Dict()
    as_of_position = fields.Integer(allow_none=True)

"""Outcome bodies: by prediction id, or by deployment and request id; one or a list."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validates_schema

from api.schemas.common import AnswerSchema
from ledger import values
from serving.fields import Storable, Text
from serving.requests import request_id_field


class OutcomeSchema(Schema):
    """The actual value observed for a prediction; a later one is a correction.

    `outcome_id` makes a retry safe: the same id (per deployment and client) with the same
    body returns the original outcome, with another body 409. Without one, an outcome equal
    to the prediction's latest is a retry; a different one is recorded as a correction.
    """

    class Meta:
        unknown = RAISE

    prediction_id = fields.UUID(
        metadata={"description": "any client's prediction, if this client may report on it"}
    )
    deployment = Text(max_length=63)
    request_id = request_id_field(metadata={"description": "one of this client's own request ids"})
    actual = fields.Raw(required=True, allow_none=False, validate=Storable())
    observed_at = fields.AwareDateTime(load_default=None, allow_none=True)
    outcome_id = Text(
        load_default=None,
        max_length=values.ID_MAX,
        metadata={"description": "the client's id of this outcome, unique per deployment"},
    )

    @validates_schema
    def check_reference(self, data: dict, **_: object) -> None:
        by_id = "prediction_id" in data
        by_request = "deployment" in data and "request_id" in data
        if by_id == by_request:
            raise ValidationError(
                "send prediction_id, or deployment and request_id", "prediction_id"
            )
        if isinstance(data["actual"], dict | list):
            raise ValidationError("the actual value is a label or a number", "actual")


class OutcomeResultSchema(AnswerSchema):
    prediction_id = fields.String()
    deployment = fields.String()
    request_id = fields.String()
    actual = fields.Raw()
    observed_at = fields.String(allow_none=True)
    correction = fields.Boolean()
    outcome_id = fields.String(allow_none=True)
    retried = fields.Boolean(
        metadata={"description": "true: an outcome sent before, answered as first recorded"}
    )


class OutcomeListSchema(AnswerSchema):
    """The answer to a list of outcomes, in the order sent."""

    outcomes = fields.List(fields.Nested(OutcomeResultSchema))

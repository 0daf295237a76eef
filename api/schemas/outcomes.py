"""Outcome bodies: by prediction id, or by deployment and request id; one or a list."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from api.schemas.common import AnswerSchema
from api.schemas.predictions import REQUEST_ID


class OutcomeSchema(Schema):
    """The actual value observed for a prediction; a later one is a correction."""

    class Meta:
        unknown = RAISE

    prediction_id = fields.UUID()
    deployment = fields.String(validate=validate.Length(min=1, max=63))
    request_id = fields.String(validate=REQUEST_ID)
    actual = fields.Raw(required=True, allow_none=False)
    observed_at = fields.AwareDateTime(load_default=None, allow_none=True)

    @validates_schema
    def check_reference(self, data: dict, **_: object) -> None:
        by_id = "prediction_id" in data
        by_request = "deployment" in data and "request_id" in data
        if by_id == by_request:
            raise ValidationError(
                "send prediction_id, or deployment and request_id", "prediction_id"
            )
        if isinstance(data["actual"], float) and data["actual"] != data["actual"]:
            raise ValidationError("NaN is not an outcome", "actual")
        if isinstance(data["actual"], dict | list):
            raise ValidationError("the actual value is a label or a number", "actual")


class OutcomeResultSchema(AnswerSchema):
    prediction_id = fields.String()
    deployment = fields.String()
    request_id = fields.String()
    actual = fields.Raw()
    observed_at = fields.String(allow_none=True)
    correction = fields.Boolean()


class OutcomeListSchema(AnswerSchema):
    """The answer to a list of outcomes, in the order sent."""

    outcomes = fields.List(fields.Nested(OutcomeResultSchema))

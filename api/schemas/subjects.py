"""Erasure bodies: POST /v1/subjects/{subject_id}/forget and its answer."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from api.schemas.common import AnswerSchema
from serving.fields import Text


class ForgetRequestSchema(Schema):
    """Why the subject is forgotten; optionally only in one deployment."""

    class Meta:
        unknown = RAISE

    reason = Text(required=True, max_length=500)
    deployment = Text(load_default=None, allow_none=True, max_length=63)


class ForgetResultSchema(AnswerSchema):
    """What the erasure did; `models` learned from the subject and may still hold its values."""

    subject_ref = fields.String(
        required=True, metadata={"description": "keyed hash of the subject id"}
    )
    status = fields.String(
        required=True, validate=validate.OneOf(("forgotten", "already_forgotten"))
    )
    deployment = fields.String(allow_none=True)
    deployments = fields.List(fields.String(), required=True)
    models = fields.List(fields.String(), required=True)
    position = fields.Integer(allow_none=True)

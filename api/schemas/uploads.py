"""Model upload: the metadata an uploader declares beside a skops file, and the answer."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from api.schemas.common import AnswerSchema
from ledger import values
from serving.fields import Storable, Text


class ModelUploadSchema(Schema):
    """Declared metadata of an uploaded model (marked `declared`, not captured)."""

    class Meta:
        unknown = RAISE

    name = Text(required=True, max_length=values.ID_MAX)
    task = fields.String(required=True, validate=validate.OneOf(("classification", "regression")))
    features = fields.List(
        Text(max_length=values.ID_MAX),
        required=True,
        validate=validate.Length(min=1),
    )
    algorithm = Text(
        load_default=None,
        max_length=values.ID_MAX,
        allow_none=True,
        metadata={"description": "default: the estimator's class path"},
    )
    deployment = Text(
        load_default=None,
        allow_none=True,
        max_length=63,
        metadata={"description": "join this deployment as a challenger"},
    )
    declared = fields.Dict(
        keys=fields.String(),
        load_default=dict,
        validate=Storable(),
        metadata={
            "description": "free-form provenance as the uploader states it "
            "(training data, code version, metrics)"
        },
    )


class UploadedModelSchema(AnswerSchema):
    """The registered model."""

    model_id = fields.String(required=True)
    name = fields.String(required=True)
    task = fields.String(required=True)
    features = fields.List(fields.String(), required=True)
    algorithm = fields.String(required=True)
    classes = fields.List(fields.Raw(), allow_none=True)
    artifact_digest = fields.String(required=True)
    provenance = fields.String(required=True)
    declared = fields.Dict(required=True)
    deployment = fields.String(allow_none=True)

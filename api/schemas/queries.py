"""Answers of the reads from the projections: the prediction index, performance, models."""

from __future__ import annotations

from marshmallow import fields

from api.schemas.common import AnswerSchema, StampedSchema


class PredictionListSchema(StampedSchema):
    """A page of predictions, newest first, pinned to one position by the cursor."""

    items = fields.List(fields.Dict(), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class PerformanceSchema(StampedSchema):
    """Metrics per model (and slice value), each with its count, over a window."""

    deployment = fields.String(required=True)
    task = fields.String(required=True)
    slice = fields.String(allow_none=True)
    window = fields.Dict(metadata={"description": "`from` and `to` days (ISO dates or null)"})
    results = fields.List(fields.Dict(), required=True)


class ModelSchema(StampedSchema):
    """One model: what was captured or declared, and its roles (now and over time)."""

    model_id = fields.String(required=True)
    name = fields.String(allow_none=True)
    algorithm = fields.String(allow_none=True)
    task = fields.String(allow_none=True)
    provenance = fields.String(allow_none=True)
    registered_by = fields.String(allow_none=True)
    training_run_id = fields.String(allow_none=True)
    spec_name = fields.String(allow_none=True)
    target = fields.String(allow_none=True)
    artifact_digest = fields.String()
    features = fields.Raw(allow_none=True)
    classes = fields.Raw(allow_none=True)
    declared = fields.Raw(allow_none=True)
    params = fields.Raw(allow_none=True)
    code_version = fields.Raw(allow_none=True)
    datasets = fields.Raw(allow_none=True)
    data_time_range = fields.Raw(allow_none=True)
    metrics = fields.Raw(allow_none=True)
    registered_at = fields.String()
    occurred_at = fields.String(
        allow_none=True,
        metadata={"description": "when its training run happened in loaded history, else null"},
    )
    registered_position = fields.Integer()
    roles = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "deployment -> role"}
    )
    role_history = fields.List(fields.Dict())


class ModelItemSchema(ModelSchema):
    """A model in the index (the stamp is the page's)."""

    class Meta:
        exclude = ("position", "complete", "as_of")


class ModelListSchema(StampedSchema):
    items = fields.List(fields.Nested(ModelItemSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class ExportManifestSchema(AnswerSchema):
    """`manifest=true`: each file's sha256 and size, the pinned position, a signed digest."""

    export = fields.String(required=True)
    from_ = fields.String(data_key="from", attribute="from", required=True)
    to = fields.String(required=True)
    format = fields.String(required=True)
    position = fields.Integer(required=True)
    files = fields.List(fields.Dict(), required=True)
    digest = fields.Dict(allow_none=True, required=True)

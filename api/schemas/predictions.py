"""Prediction bodies: one row or a batch in, one answer per row out, and the provenance."""

from __future__ import annotations

from marshmallow import fields

from api.schemas.common import AnswerSchema
from serving.requests import REQUEST_ID, PredictionRequestSchema, Rows  # noqa: F401 - the spec names them here


class PredictionResultSchema(AnswerSchema):
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


class BatchResultSchema(AnswerSchema):
    """A batch: one result per row, in order."""

    request_id = fields.String()
    predictions = fields.List(fields.Nested(PredictionResultSchema))


class ProvenanceSchema(AnswerSchema):
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
    tally = fields.Dict(
        allow_none=True,
        metadata={
            "description": "majority_vote only: each model's vote, the winning value, "
            "how many voted for it (null under other policies)"
        },
    )
    caller = fields.String()
    outcome = fields.Dict(allow_none=True)
    outcomes = fields.List(fields.Dict())
    position = fields.Integer()
    recorded_at = fields.String()
    chain = fields.Dict()
    as_of_position = fields.Integer(allow_none=True)


class ContributionSchema(AnswerSchema):
    """One feature as received: its input columns' contributions summed."""

    feature = fields.String()
    value = fields.Raw(allow_none=True, metadata={"description": "null for a personal feature"})
    contribution = fields.Float(metadata={"description": "in the answer's unit"})
    columns = fields.Integer(metadata={"description": "model input columns summed into it"})
    personal = fields.Boolean()


class ExplanationSchema(AnswerSchema):
    """Why this value: base value plus the contributions equals the output (exact methods only)."""

    prediction_id = fields.String()
    model_id = fields.String()
    model_type = fields.String()
    unit = fields.String(metadata={"description": "e.g. `log-odds of yes`, `probability of 1`"})
    base_value = fields.Float()
    output = fields.Float()
    additivity_error = fields.Float()
    recorded = fields.Dict(metadata={"description": "the model's recorded output"})
    contributions = fields.List(fields.Nested(ContributionSchema))
    summary = fields.List(fields.String())
    method = fields.Dict(metadata={"description": "library, explainer, perturbation, tolerance"})
    background = fields.Dict(metadata={"description": "what the contributions are measured from"})
    as_of_position = fields.Integer(allow_none=True)
    explained_at = fields.String()

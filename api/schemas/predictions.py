"""Prediction bodies: one row or a batch in, one answer per row out, and the provenance."""

from __future__ import annotations

from marshmallow import fields

from api.schemas.common import AnswerSchema
from serving.requests import PredictionRequestSchema, Rows, request_id_field  # noqa: F401 - the spec names them here


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


class RecordedOutcomeSchema(AnswerSchema):
    """One outcome of a prediction: what came true, who reported it, when the ledger recorded it."""

    actual = fields.Raw(allow_none=True)
    observed_at = fields.String(allow_none=True)
    correction = fields.Boolean(metadata={"description": "true: it supersedes an earlier outcome"})
    actor = fields.String()
    reporter = fields.String(metadata={"description": "the actor whose key reported it"})
    outcome_id = fields.String(allow_none=True, metadata={"description": "the client's id"})
    version = fields.Integer(metadata={"description": "the prediction's version it was added to"})
    recorded_at = fields.String(metadata={"description": "when the ledger recorded it (ISO-8601)"})
    position = fields.Integer(metadata={"description": "its ledger position"})


class WindowSchema(AnswerSchema):
    from_position = fields.Integer()
    to_position = fields.Integer()


class CoveringCheckSchema(AnswerSchema):
    """A quality check whose window or batch held the prediction."""

    check_id = fields.String()
    key = fields.String()
    source = fields.String(metadata={"description": "window or batch"})
    position = fields.Integer()
    recorded_at = fields.String()
    rows = fields.Integer()
    window = fields.Nested(WindowSchema, allow_none=True)
    batch = fields.Dict(allow_none=True)
    failing = fields.List(fields.String())
    passed = fields.Boolean()
    actor = fields.String()


class CoveringPeriodSchema(AnswerSchema):
    """A period of a feed of the deployment that holds the prediction's recorded time."""

    feed = fields.String()
    start = fields.String()
    end = fields.String()
    expected = fields.Integer()
    received = fields.Integer()
    flags = fields.List(fields.String())
    status = fields.String(metadata={"description": "open, ok, short, excess or none"})
    closed = fields.Boolean()
    closed_by = fields.String(allow_none=True)
    position = fields.Integer(allow_none=True, metadata={"description": "where it was closed"})
    recorded_at = fields.String(allow_none=True)


class CoverageSchema(AnswerSchema):
    """What covered the prediction, as far as the data health tables have got (`position`)."""

    position = fields.Integer()
    quality_checks = fields.List(fields.Nested(CoveringCheckSchema))
    feed_periods = fields.List(fields.Nested(CoveringPeriodSchema))


class ProvenanceSchema(AnswerSchema):
    """Everything about one prediction (nested parts are documents of their own)."""

    prediction_id = fields.String()
    deployment = fields.String()
    request_id = fields.String()
    body_digest = fields.String(metadata={"description": "the digest of the features as sent"})
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
    client = fields.String(
        metadata={"description": "the client whose request id it is (its key's client)"}
    )
    outcome = fields.Nested(RecordedOutcomeSchema, allow_none=True)
    outcomes = fields.List(fields.Nested(RecordedOutcomeSchema))
    position = fields.Integer()
    recorded_at = fields.String()
    occurred_at = fields.String(
        allow_none=True,
        metadata={"description": "the historic instant loaded history gave (else null)"},
    )
    chain = fields.Dict()
    coverage = fields.Nested(CoverageSchema, allow_none=True)
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

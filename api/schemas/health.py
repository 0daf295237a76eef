"""Data health bodies: ingestion counts, batches to check, and the data-health answer."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from api.schemas.common import AnswerSchema
from ledger import values
from serving.fields import Text


class IngestionSchema(Schema):
    """A feed's received count; without `period_start`, the period under way when it is recorded."""

    class Meta:
        unknown = RAISE

    feed = Text(required=True, max_length=values.ID_MAX)
    count = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=values.SAFE_MAX)
    )
    period_start = fields.AwareDateTime(load_default=None, allow_none=True)
    source = Text(load_default="api", max_length=100)


class IngestionResultSchema(AnswerSchema):
    feed = fields.String()
    count = fields.Integer()
    period_start = fields.String(allow_none=True)
    reported_total = fields.Integer(
        metadata={"description": "every count reported to the feed so far"}
    )


class QualityCheckSchema(Schema):
    """Rows to check against the deployment's reference profile."""

    class Meta:
        unknown = RAISE

    rows = fields.List(
        fields.Dict(keys=Text(max_length=values.ID_MAX)),  # a bad row's keys are recorded
        required=True,
        validate=validate.Length(min=1),
    )
    batch_id = Text(
        load_default=None,
        allow_none=True,
        max_length=values.ID_MAX,
        metadata={"description": "names the batch: the same id is checked once"},
    )


class QualityCheckResultSchema(AnswerSchema):
    """What the check found; recorded as a QualityCheck.Recorded event."""

    check_id = fields.String()
    deployment = fields.String()
    key = fields.String()
    rows = fields.Integer()
    batch = fields.Dict()
    reference = fields.Dict(
        metadata={"description": "the model and training run whose profile was used"}
    )
    features = fields.Dict(
        metadata={"description": "per feature: psi, ks_statistic, ks_pvalue, null_share, ..."}
    )
    outlier_share = fields.Float(allow_none=True)
    outliers = fields.List(
        fields.Integer(), metadata={"description": "row indexes the IsolationForest flags"}
    )
    bad_rows = fields.Integer(
        metadata={"description": "rows that do not load as a prediction's would (the schema check)"}
    )
    row_errors = fields.List(
        fields.String(), metadata={"description": "the first 20 bad rows and their field errors"}
    )
    results = fields.List(fields.Dict())
    failing = fields.List(fields.String())
    passed = fields.Boolean()


class DataHealthSchema(AnswerSchema):
    """Feeds with periods, deployments with quality checks and drift, and model health."""

    feeds = fields.List(fields.Dict())
    deployments = fields.List(fields.Dict())
    model_health = fields.List(fields.Dict())
    position = fields.Integer()
    complete = fields.Boolean()
    as_of = fields.String()

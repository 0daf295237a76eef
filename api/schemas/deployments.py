"""Deployment bodies: create, change, add a model, promote, and the deployment read."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from api.schemas.common import AnswerSchema, PageSchema, StrictBoolean
from ledger import values
from serving.fields import Storable, Text

RESERVED_FEATURE_NAMES = ("request_id",)  # batch rows may carry their own request_id


class FeatureSchema(Schema):
    """One input feature: its name, type, whether it may be missing, whether it is personal."""

    class Meta:
        unknown = RAISE

    name = Text(
        required=True, max_length=values.ID_MAX, validate=validate.NoneOf(RESERVED_FEATURE_NAMES)
    )
    type = fields.String(
        required=True, validate=validate.OneOf(("number", "integer", "category", "boolean"))
    )
    nullable = StrictBoolean(load_default=False)
    personal = StrictBoolean(load_default=False)
    max_length = fields.Integer(
        strict=True,
        validate=validate.Range(1, values.CATEGORY_MAX),
        metadata={"description": f"a category's longest value (default {values.TEXT_MAX})"},
    )

    @validates_schema
    def check_max_length(self, data: dict, **_: object) -> None:
        if "max_length" in data and data["type"] != "category":
            raise ValidationError("only a category feature has a max_length", "max_length")


class InputSchemaSchema(Schema):
    """A deployment's typed input schema."""

    class Meta:
        unknown = RAISE

    features = fields.List(
        fields.Nested(FeatureSchema), required=True, validate=validate.Length(min=1)
    )
    subject_field = Text(load_default=None, allow_none=True, max_length=values.ID_MAX)


class PolicySchema(Schema):
    """`manual`, `best_recent` (metric, days, min_outcomes) or `majority_vote`."""

    class Meta:
        unknown = RAISE

    name = fields.String(
        required=True, validate=validate.OneOf(("manual", "best_recent", "majority_vote"))
    )
    metric = Text(max_length=values.ID_MAX)
    days = fields.Integer(strict=True, validate=validate.Range(min=1, max=values.DAYS_MAX))
    min_outcomes = fields.Integer(strict=True, validate=validate.Range(min=1, max=values.SAFE_MAX))


class DeploymentCreateSchema(Schema):
    """POST /v1/deployments."""

    class Meta:
        unknown = RAISE

    name = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z0-9][a-z0-9_-]{0,62}$", error="use 1-63 lower-case letters, digits, '-' or '_'"
        ),
    )
    task = fields.String(required=True, validate=validate.OneOf(("classification", "regression")))
    schema = fields.Nested(InputSchemaSchema, required=True)
    policy = fields.Nested(PolicySchema, load_default=lambda: {"name": "manual"})
    positive_label = fields.Raw(load_default=None, allow_none=True, validate=Storable())
    outcome_maturity_days = fields.Integer(
        load_default=0, strict=True, validate=validate.Range(min=0, max=values.DAYS_MAX)
    )
    settings = fields.Dict(keys=fields.String(), load_default=dict, validate=Storable())


class DeploymentPatchSchema(Schema):
    """PATCH /v1/deployments/{name}: a new policy, schema or settings (at least one)."""

    OPENAPI = {"minProperties": 1}  # the OpenAPI component says what check_something checks

    class Meta:
        unknown = RAISE

    policy = fields.Nested(PolicySchema)
    schema = fields.Nested(InputSchemaSchema)
    settings = fields.Dict(keys=fields.String(), validate=Storable())

    @validates_schema
    def check_something(self, data: dict, **_: object) -> None:
        if not data:
            raise ValidationError("send policy, schema or settings to change")


class AddModelSchema(Schema):
    """POST /v1/deployments/{name}/models."""

    class Meta:
        unknown = RAISE

    model_id = fields.UUID(required=True)


class PromoteSchema(Schema):
    """PUT /v1/deployments/{name}/leader."""

    class Meta:
        unknown = RAISE

    model_id = fields.UUID(required=True)
    reason = Text(required=True, max_length=values.NOTE_MAX)
    occurred_at = fields.String(
        metadata={
            "description": "RFC 3339 instant the change occurred at, for loading history: "
            "only keys granted `<deployment>:load-history`, only an instant that has passed",
            "example": "2026-03-03T12:00:00Z",
        }
    )


class RetireSchema(Schema):
    """DELETE /v1/deployments/{name}/models/{id} (the reason may also be a query parameter)."""

    class Meta:
        unknown = RAISE

    reason = Text(load_default="retired over the API", max_length=values.NOTE_MAX)


class ModelSummarySchema(AnswerSchema):
    id = fields.String()
    name = fields.String()
    algorithm = fields.String()
    features = fields.List(fields.String())
    provenance = fields.String()
    training_run_id = fields.String(allow_none=True)
    role = fields.String(metadata={"description": "leader or challenger"})


class LeaderChangeSchema(AnswerSchema):
    """One change of leader: which model, who, when (time and ledger position), why, on what."""

    model_id = fields.String(metadata={"description": "the model made leader"})
    previous = fields.String(allow_none=True, metadata={"description": "the leader it replaced"})
    recorded_at = fields.String(metadata={"description": "when the ledger recorded it (ISO-8601)"})
    occurred_at = fields.String(
        allow_none=True,
        metadata={"description": "the historic instant of loaded history (else null)"},
    )
    position = fields.Integer(
        metadata={"description": "its ledger position (GET /v1/ledger/events?from=N&limit=1)"}
    )
    actor = fields.String(metadata={"description": "who promoted: an API key's actor or a rule"})
    reason = fields.String()
    policy = fields.Dict(
        allow_none=True, metadata={"description": "the deployment's policy at the change"}
    )
    evidence = fields.Dict(metadata={"description": "what a policy decided on (best_recent)"})


class LeaderSinceSchema(AnswerSchema):
    """When the current leader became leader."""

    recorded_at = fields.String()
    occurred_at = fields.String(allow_none=True)
    position = fields.Integer()


class DeploymentSchema(AnswerSchema):
    """A deployment as read: its leader, challengers, schema, policy and version."""

    name = fields.String()
    task = fields.String()
    version = fields.Integer()
    schema = fields.Nested(InputSchemaSchema)
    policy = fields.Dict()
    positive_label = fields.Raw(allow_none=True)
    outcome_maturity_days = fields.Integer()
    settings = fields.Dict()
    leader = fields.Nested(ModelSummarySchema, allow_none=True)
    challengers = fields.List(fields.Nested(ModelSummarySchema))
    leader_set_by = fields.Dict(allow_none=True)
    leader_since = fields.Nested(LeaderSinceSchema, allow_none=True)
    leader_history = fields.List(
        fields.Nested(LeaderChangeSchema), metadata={"description": "oldest first, up to as_of"}
    )
    as_of_position = fields.Integer(allow_none=True)


class DeploymentPageSchema(PageSchema):
    items = fields.List(fields.Nested(DeploymentSchema))

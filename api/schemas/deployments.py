"""Deployment bodies: create, change, add a model, promote, and the deployment read."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from api.schemas.common import PageSchema

RESERVED_FEATURE_NAMES = ("request_id",)  # batch rows may carry their own request_id


class FeatureSchema(Schema):
    """One input feature: its name, type, whether it may be missing, whether it is personal."""

    class Meta:
        unknown = RAISE

    name = fields.String(
        required=True, validate=[validate.Length(1, 200), validate.NoneOf(RESERVED_FEATURE_NAMES)]
    )
    type = fields.String(
        required=True, validate=validate.OneOf(("number", "integer", "category", "boolean"))
    )
    nullable = fields.Boolean(load_default=False)
    personal = fields.Boolean(load_default=False)


class InputSchemaSchema(Schema):
    """A deployment's typed input schema."""

    class Meta:
        unknown = RAISE

    features = fields.List(
        fields.Nested(FeatureSchema), required=True, validate=validate.Length(min=1)
    )
    subject_field = fields.String(load_default=None, allow_none=True)


class PolicySchema(Schema):
    """`manual`, `best_recent` (metric, days, min_outcomes) or `majority_vote`."""

    class Meta:
        unknown = RAISE

    name = fields.String(
        required=True, validate=validate.OneOf(("manual", "best_recent", "majority_vote"))
    )
    metric = fields.String()
    days = fields.Integer(strict=True, validate=validate.Range(min=1))
    min_outcomes = fields.Integer(strict=True, validate=validate.Range(min=1))


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
    positive_label = fields.Raw(load_default=None, allow_none=True)
    outcome_maturity_days = fields.Integer(
        load_default=0, strict=True, validate=validate.Range(min=0)
    )
    settings = fields.Dict(keys=fields.String(), load_default=dict)


class DeploymentPatchSchema(Schema):
    """PATCH /v1/deployments/{name}: a new policy, schema or settings (at least one)."""

    class Meta:
        unknown = RAISE

    policy = fields.Nested(PolicySchema)
    schema = fields.Nested(InputSchemaSchema)
    settings = fields.Dict(keys=fields.String())

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
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class RetireSchema(Schema):
    """DELETE /v1/deployments/{name}/models/{id} (the reason may also be a query parameter)."""

    class Meta:
        unknown = RAISE

    reason = fields.String(
        load_default="retired over the API", validate=validate.Length(min=1, max=2000)
    )


class ModelSummarySchema(Schema):
    id = fields.String()
    name = fields.String()
    algorithm = fields.String()
    features = fields.List(fields.String())
    provenance = fields.String()
    training_run_id = fields.String(allow_none=True)
    role = fields.String(metadata={"description": "leader or challenger"})


class LeaderChangeSchema(Schema):
    """One change of leader: which model, who, when (time and ledger position), why, on what."""

    model_id = fields.String(metadata={"description": "the model made leader"})
    previous = fields.String(allow_none=True, metadata={"description": "the leader it replaced"})
    recorded_at = fields.String(metadata={"description": "when the ledger recorded it (ISO-8601)"})
    position = fields.Integer(
        metadata={"description": "its ledger position (GET /v1/ledger/events?from=N&limit=1)"}
    )
    actor = fields.String(metadata={"description": "who promoted: an API key's actor or a rule"})
    reason = fields.String()
    policy = fields.Dict(
        allow_none=True, metadata={"description": "the deployment's policy at the change"}
    )
    evidence = fields.Dict(metadata={"description": "what a policy decided on (best_recent)"})


class LeaderSinceSchema(Schema):
    """When the current leader became leader."""

    recorded_at = fields.String()
    position = fields.Integer()


class DeploymentSchema(Schema):
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

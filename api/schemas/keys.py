"""API key bodies: issue (admin) and the answers to issue and revoke."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from api.schemas.common import AnswerSchema
from ledger import values
from ledger.errors import InvalidCommand
from ledger.timeline import parse_instant
from serving.fields import Text


def _aware_instant(value: str) -> None:
    try:
        parse_instant(value, "expires_at")
    except InvalidCommand as error:
        raise ValidationError(error.detail) from None


class KeyCreateSchema(Schema):
    """POST /v1/keys."""

    class Meta:
        unknown = RAISE

    role = fields.String(required=True, validate=validate.OneOf(("admin", "predictor", "auditor")))
    label = Text(load_default="", min_length=0, max_length=values.ID_MAX)
    expires_at = fields.String(load_default=None, allow_none=True, validate=_aware_instant)
    client = Text(
        load_default=None,
        allow_none=True,
        max_length=values.ID_MAX,
        metadata={
            "description": "the client the key acts for (its request ids and predictions); "
            "an existing client's name rotates its key; none: the key is its own client"
        },
    )
    grants = fields.List(
        Text(max_length=2 * values.ID_MAX),
        load_default=list,
        validate=validate.Length(max=200),
        metadata={
            "description": "deployment:capability, capability predict, report-outcomes, read "
            "or load-history"
        },
    )


class KeyIssuedSchema(AnswerSchema):
    """The new key: shown once, only its HMAC is stored."""

    key_id = fields.String(required=True)
    key = fields.String(required=True)
    role = fields.String(required=True)
    label = fields.String(required=True)
    expires_at = fields.String(allow_none=True)
    client = fields.String(required=True)
    grants = fields.List(fields.String(), required=True)


class KeyRevokedSchema(AnswerSchema):
    """DELETE /v1/keys/{key_id}."""

    key_id = fields.String(required=True)
    revoked = fields.Boolean(required=True)

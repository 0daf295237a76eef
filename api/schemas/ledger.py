"""Auditor answers about the ledger itself: digests, verification jobs, liveness."""

from __future__ import annotations

from marshmallow import fields

from api.schemas.common import AnswerSchema


class DigestSchema(AnswerSchema):
    """A signed digest of the chain's head (the notary's JSON form)."""

    position = fields.Integer(required=True)
    head_hash = fields.String(required=True)
    recorded_at = fields.String(required=True, allow_none=True)
    issued_at = fields.String(required=True)
    key_id = fields.String(required=True)
    public_key = fields.String(required=True)
    signature = fields.String(required=True)


class VerifyJobSchema(AnswerSchema):
    """A verification run: `running`, then `done` with the notary's report, or `failed`."""

    job_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["running", "done", "failed"]})
    started_at = fields.String(required=True)
    finished_at = fields.String(allow_none=True)
    ok = fields.Boolean(
        allow_none=True, metadata={"description": "something was compared and everything held"}
    )
    report = fields.Dict(
        allow_none=True,
        metadata={
            "description": "the notary's report; `verdict` (ok, tampered, unproven) and "
            "`proved`, the line naming what was compared"
        },
    )
    error = fields.String(allow_none=True)


class StallSchema(AnswerSchema):
    """Why a projection cannot move on, and since when."""

    position = fields.Integer(required=True, metadata={"description": "its position"})
    event = fields.Integer(
        allow_none=True,
        metadata={"description": "the position of the event it cannot apply, once narrowed down"},
    )
    error = fields.String(required=True, metadata={"description": "the error's class"})
    reason = fields.String(required=True, metadata={"description": "the error's first line"})
    since = fields.String(required=True, metadata={"description": "the first failure, UTC"})
    attempts = fields.Integer(required=True)


class ProjectionStatusSchema(AnswerSchema):
    """One projection on /healthz."""

    name = fields.String(required=True)
    position = fields.Integer(required=True)
    lag = fields.Integer(required=True, metadata={"description": "events recorded past it"})
    stall = fields.Nested(StallSchema)


class HealthSchema(AnswerSchema):
    """GET /healthz (503 when a projection has been stalled past the grace)."""

    status = fields.String(required=True, metadata={"description": "ok or stalled"})
    database = fields.String(required=True)
    position = fields.Integer(allow_none=True)
    projections = fields.List(fields.Nested(ProjectionStatusSchema))


class ReadinessSchema(AnswerSchema):
    """GET /readyz when reads are served."""

    status = fields.String(required=True, metadata={"enum": ["ready"]})
    position = fields.Integer(
        required=True,
        metadata={"description": "the head when the process started: every projection is past it"},
    )

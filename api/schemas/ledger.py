"""Auditor answers about the ledger itself: digests, verification jobs, liveness."""

from __future__ import annotations

from marshmallow import Schema, fields


class DigestSchema(Schema):
    """A signed digest of the chain's head (the notary's JSON form)."""

    class Meta:
        unknown = "include"


class VerifyJobSchema(Schema):
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


class HealthSchema(Schema):
    """GET /healthz."""

    status = fields.String(required=True)
    database = fields.String(required=True)
    position = fields.Integer(allow_none=True)

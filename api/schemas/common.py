"""Schemas every resource shares: the problem document, pages, ISO instants."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields


class ProblemSchema(Schema):
    """RFC 9457 problem details plus a stable `code` (and `field` when one is at fault)."""

    class Meta:
        unknown = INCLUDE  # RFC 9457 extension members (e.g. `limit`, `index`) are allowed

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String(required=True)
    field = fields.String()
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "every field at fault, by path"},
    )


class PageSchema(Schema):
    """A page of a list: `items` and the opaque cursor of the next page (null at the end)."""

    next_cursor = fields.String(allow_none=True)

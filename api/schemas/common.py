"""Schemas every resource shares: the problem document, pages, ISO instants."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import INCLUDE, Schema, fields, post_dump


class UndeclaredAnswerField(RuntimeError):
    """An answer carries a member its schema does not declare: the schema is behind the code."""


class StrictBoolean(fields.Boolean):
    """A JSON true or false only (marshmallow's Boolean also takes 0, 1, "yes", "on")."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if type(value) is not bool:
            raise self.make_error("invalid", input=value)
        return value


class AnswerSchema(Schema):
    """An answer's schema: dumping an answer with a member it does not declare fails (a 500,
    which the schemathesis run reports) instead of dropping the member from the answer."""

    @post_dump(pass_original=True)
    def _nothing_dropped(self, data: Any, original: Any, **_: Any) -> Any:
        if isinstance(original, Mapping):
            extra = set(original) - {f.attribute or name for name, f in self.fields.items()}
            if extra:
                raise UndeclaredAnswerField(
                    f"{type(self).__name__} does not declare {sorted(extra)}: declare them"
                )
        return data


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


class PageSchema(AnswerSchema):
    """A page of a list: `items` and the opaque cursor of the next page (null at the end)."""

    next_cursor = fields.String(allow_none=True)


class StampedSchema(AnswerSchema):
    """A read from the projections: the position it answers at, and whether it covers `as_of`."""

    position = fields.Integer(required=True)
    complete = fields.Boolean(required=True)
    as_of = fields.String(metadata={"description": "pos:N, when an as_of was asked"})

"""Every JSON answer is dumped through the schema its route declares for its status."""

from __future__ import annotations

from functools import cache
from typing import Any

import falcon
from marshmallow import Schema

from api.routes.table import Answer, Many, OneOf, Shape


@cache
def schema_for(shape: type[Schema] | Many) -> Schema:
    """One instance per schema (marshmallow schemas are safe to share for dumping)."""
    return shape.schema(many=True) if isinstance(shape, Many) else shape()


def dump(shape: Shape, answer: Any) -> Any:
    """The answer as the shape's schema dumps it (a OneOf picks its schema by the answer)."""
    if isinstance(shape, OneOf):
        shape = shape.schemas[shape.pick(answer)]
    return schema_for(shape).dump(answer)


def declared(answer: Answer | None) -> bool:
    """Whether an answer is dumped here: JSON with a schema, not built directly."""
    return answer is not None and not answer.direct and not isinstance(answer.shape, dict | None)


class AnswerMiddleware:
    """Dumps `resp.media` through the route's answer schema for the response status."""

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        route = getattr(req.context, "route", None)
        if not req_succeeded or route is None or resp.media is None:
            return
        answer = route.answers.get(resp.status_code)
        if declared(answer):
            resp.media = dump(answer.shape, resp.media)  # type: ignore[union-attr,arg-type]

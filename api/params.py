"""Request parameters shared by resources: bodies, `as_of`, `If-Match`, pages.

Query parameters are parsed before the resource runs (api/query.py); the helpers here
read their typed values."""

from __future__ import annotations

import base64
import re
from typing import Any

import falcon

from api import json_body
from api.answers import schema_for
from api.errors import Problem
from api.routes.table import Many, OneOf
from ledger.timeline import resolve_as_of


def json_loads(data: bytes | str) -> Any:
    """orjson's strict parse, nesting bounded; NaN, Infinity and huge numbers are 422s naming
    their field (api/json_body.py)."""
    return json_body.loads(data)


def body(req: falcon.Request) -> Any:
    """The parsed JSON body (malformed JSON, NaN or Infinity -> 400; none -> 400)."""
    return req.get_media()


def load(req: falcon.Request) -> Any:
    """The body loaded by the schema its route declares (ValidationError -> 422 naming
    fields); a route that takes one object or a list of them loads what was sent."""
    data = body(req)
    shape = req.context.route.body
    if isinstance(shape, OneOf):
        lists = [s for s in shape.schemas if isinstance(s, Many)]
        shape = lists[0] if lists and isinstance(data, list) else shape.schemas[0]
    return schema_for(shape).load(data)


def as_of(req: falcon.Request, engine: Any) -> int | None:
    """The ledger position the (already checked) `as_of` names, or None for now."""
    return resolve_as_of(engine, req.context.query["as_of"])


def if_match(req: falcon.Request, required: bool = True) -> int | None:
    """The version in If-Match (`3`, `"3"` or `W/"3"`); 428 when required and absent."""
    raw = req.get_header("If-Match")
    if raw is None:
        if required:
            raise Problem(
                428,
                "if_match_required",
                "send If-Match with the deployment's version (its ETag) to change it",
            )
        return None
    text = raw.strip().removeprefix("W/").strip('"')
    if not re.fullmatch(r"[0-9]{1,18}", text):  # ASCII digits: str.isdigit() takes '²'
        raise Problem(
            422, "invalid_if_match", f"If-Match {raw!r} is not a version number", "If-Match"
        )
    return int(text)


def etag(version: int) -> str:
    return f'"{version}"'


def query(req: falcon.Request) -> dict[str, Any]:
    """The query parameters as api/query.py parsed them from the route's declaration."""
    return req.context.query


def limit(req: falcon.Request) -> int:
    """The page size, within the route's declared bounds (its default when absent)."""
    return int(req.context.query["limit"])


def cursor(req: falcon.Request) -> int:
    """The position a page starts after (the opaque cursor encodes it); 0 for the first page."""
    return req.context.query["cursor"] or 0


def name_cursor(req: falcon.Request) -> str | None:
    """The name a page of names starts after (the opaque cursor encodes it); None at first."""
    return req.context.query["cursor"]


def next_cursor(position: int | None) -> str | None:
    if position is None:
        return None
    return base64.urlsafe_b64encode(f"p:{position}".encode()).decode().rstrip("=")


def next_name_cursor(name: str | None) -> str | None:
    return (
        None
        if name is None
        else base64.urlsafe_b64encode(f"n:{name}".encode()).decode().rstrip("=")
    )

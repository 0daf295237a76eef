"""Request parameters shared by resources: bodies, `as_of`, `If-Match`, pages."""

from __future__ import annotations

import base64
from typing import Any

import falcon
from marshmallow import Schema

from api import json_body
from api.errors import Problem
from ledger.timeline import resolve_as_of


def json_loads(data: bytes | str) -> Any:
    """orjson's strict parse, nesting bounded; NaN, Infinity and huge numbers are 422s naming
    their field (api/json_body.py)."""
    return json_body.loads(data)


def body(req: falcon.Request) -> Any:
    """The parsed JSON body (malformed JSON, NaN or Infinity -> 400; none -> 400)."""
    return req.get_media()


def load(req: falcon.Request, schema: Schema) -> Any:
    """The body loaded by a marshmallow schema (ValidationError -> 422 naming fields)."""
    return schema.load(body(req))


def as_of(req: falcon.Request, engine: Any) -> int | None:
    """The ledger position `as_of` names, or None for now (anything malformed -> 422)."""
    return resolve_as_of(engine, req.get_param("as_of"))


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
    if not text.isdigit():
        raise Problem(
            422, "invalid_if_match", f"If-Match {raw!r} is not a version number", "If-Match"
        )
    return int(text)


def etag(version: int) -> str:
    return f'"{version}"'


def limit(req: falcon.Request, default: int = 100, maximum: int = 1000) -> int:
    """The page size: 1..maximum (the page cap), else 422 naming `limit`."""
    raw = req.get_param("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise Problem(
            422,
            "invalid_limit",
            f"limit must be an integer from 1 to {maximum}",
            "limit",
            maximum=maximum,
        )
    return int(raw)


def cursor(req: falcon.Request) -> int:
    """The position a page starts after (the opaque cursor encodes it); 0 for the first page."""
    raw = req.get_param("cursor")
    if not raw:
        return 0
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind == "p" and value.isdigit():
            return int(value)
    except (ValueError, UnicodeDecodeError):
        pass
    raise Problem(
        422,
        "invalid_cursor",
        "cursor is not one this API issued; start from the first page",
        "cursor",
    )


def next_cursor(position: int | None) -> str | None:
    if position is None:
        return None
    return base64.urlsafe_b64encode(f"p:{position}".encode()).decode().rstrip("=")


def name_cursor(req: falcon.Request) -> str | None:
    """The name a page of names starts after (the opaque cursor encodes it); None at first."""
    raw = req.get_param("cursor")
    if not raw:
        return None
    try:
        kind, _, value = (
            base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode().partition(":")
        )
    except (ValueError, UnicodeDecodeError):
        kind, value = "", ""
    if kind != "n" or not value:
        raise Problem(
            422,
            "invalid_cursor",
            "cursor is not one this API issued; start from the first page",
            "cursor",
        )
    return value


def next_name_cursor(name: str | None) -> str | None:
    return (
        None
        if name is None
        else base64.urlsafe_b64encode(f"n:{name}".encode()).decode().rstrip("=")
    )

"""The JSON body parser: orjson's strict parse, a depth bound, and a field named for a bad number.

A body nested deeper than `ledger.values.DEPTH_MAX` levels is 400 `too_deep`, however deep
(orjson stops at 1,024 levels; the bound is checked before anything recurses). When orjson
refuses a body, the standard library parses it once more, only to name what was wrong:
NaN, Infinity, a number past the double range or a lone surrogate is a 422 naming its
field (`features.income`); anything else stays a 400 `malformed_json`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import orjson
from marshmallow import ValidationError

from api.errors import Problem
from ledger import values

DEPTH_MAX = values.DEPTH_MAX
CONTAINERS = frozenset((dict, list))


def loads(data: str | bytes) -> Any:
    """The parsed body; too deep -> 400 `too_deep`, an unstorable number -> 422 naming it."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        if "depth limit" in str(error):
            raise too_deep() from None
        name_the_fault(data)  # only on the failure path: the valid path stays fast
        raise
    if may_be_deep(data) and deeper_than(body, DEPTH_MAX):
        raise too_deep()
    return body


def too_deep() -> Problem:
    return Problem(
        400,
        "too_deep",
        f"the body is nested deeper than {DEPTH_MAX} levels of objects and arrays",
        "body",
        limit=DEPTH_MAX,
    )


def may_be_deep(data: str | bytes) -> bool:
    """False when the body has too few brackets to be too deep (a single row never is)."""
    if isinstance(data, bytes):
        return data.count(b"{") + data.count(b"[") > DEPTH_MAX
    return data.count("{") + data.count("[") > DEPTH_MAX


def deeper_than(value: Any, limit: int) -> bool:
    """True when objects and arrays nest more than `limit` levels in `value` (no recursion)."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below = []
        for container in level:
            items = container.values() if type(container) is dict else container
            if not CONTAINERS.isdisjoint(map(type, items)):  # a batch's rows hold none: C speed
                below.extend(x for x in items if type(x) is dict or type(x) is list)
        level = below
    return False


def name_the_fault(data: str | bytes) -> None:
    """Raise a 422 naming the value orjson refused when it is a number or a text the standard
    library reads (NaN, 1e400, a 5,000-digit integer, a lone surrogate); else return."""
    try:
        body = json.loads(data, parse_constant=float, parse_int=_integer)
    except (ValueError, RecursionError):
        return  # malformed for another reason: the caller's 400 stands
    if deeper_than(body, DEPTH_MAX):
        raise too_deep()
    fault = values.json_fault(body, max_text=sys.maxsize)
    if fault is not None:
        path, why = fault
        raise ValidationError({path or "body": [f"The value {why}."]})


def _integer(token: str) -> int:
    # Past 19 digits an integer is out of range anyway; int() of 4,301 digits would raise.
    if len(token.lstrip("-")) <= 19:
        return int(token)
    return -values.SAFE_MAX - 1 if token.startswith("-") else values.SAFE_MAX + 1

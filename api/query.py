"""Query parameters parsed from the route table's declarations, and only from them.

A name the route does not declare is refused (400 `unknown_parameter`), and so is a
malformed value (400 naming it), before the resource runs: a resource reads the parsed,
typed values from `req.context.query` (api/params.py's helpers), so it cannot read a
parameter the OpenAPI document does not show.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import falcon

from api.errors import Problem
from api.routes.table import INTEGER_MAX, Param, Route
from ledger.errors import LedgerError
from ledger.timeline import parse_micros

INTEGER = re.compile(r"-?[0-9]{1,18}")  # ASCII digits only: str.isdigit() takes '²'
DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
DATE_TIME = re.compile(
    DATE + r"[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
POSITION = re.compile(r"pos:[0-9]{1,18}")
BOOLEANS = {"true": True, "false": False}
NAME_ECHO = 100  # characters of an unknown parameter's name a refusal repeats


def instant(text: str) -> int:
    """An RFC 3339 instant (an offset is required) as µs since the epoch.

    The edge holds the text to RFC 3339's shape (what the OpenAPI `date-time` format says);
    the ledger's one parser of instants reads it."""
    match = DATE_TIME.fullmatch(text)
    if not match:
        raise ValueError("an ISO-8601 instant with an offset, e.g. 2026-03-03T12:00:00Z")
    fraction = (match.group(4) or ".0")[1:7].ljust(6, "0")
    offset = match.group(5).upper()
    whole = f"{text[:10]}T{match.group(1)}:{match.group(2)}:{match.group(3)}.{fraction}{offset}"
    try:
        return parse_micros(whole, "instant")
    except (OverflowError, LedgerError):
        raise ValueError("a real instant, e.g. 2026-03-03T12:00:00Z") from None


def as_of(text: str) -> str:
    """`pos:N` or an instant; kept as text. The resource resolves it to a position and refuses
    one in the future (422: well formed, but not a time the ledger has reached)."""
    if not POSITION.fullmatch(text):
        try:
            instant(text)
        except ValueError:
            raise ValueError("pos:N or an ISO-8601 instant with an offset") from None
    return text


def day_or_instant(text: str) -> str:
    """A date (midnight UTC) or an instant; kept as text for the export's pinning."""
    if re.fullmatch(DATE, text):
        try:
            datetime.strptime(text, "%Y-%m-%d")
        except ValueError:
            raise ValueError("a real date, e.g. 2026-03-01") from None
        return text
    instant(text)
    return text


def _unb64(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise ValueError("a cursor this API issued")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValueError("a cursor this API issued") from None


def position_cursor(text: str) -> int:
    kind, _, value = _unb64(text).partition(":")
    if kind != "p" or not re.fullmatch(r"[0-9]{1,18}", value):
        raise ValueError("a cursor this API issued; start from the first page")
    return int(value)


def name_cursor(text: str) -> str:
    kind, _, value = _unb64(text).partition(":")
    if kind != "n" or not value or "\x00" in value:
        raise ValueError("a cursor this API issued; start from the first page")
    return value


def index_cursor(text: str) -> str:
    from projections.query_predictions import decode_cursor

    try:
        decode_cursor(text)
    except (LedgerError, ValueError, TypeError):
        raise ValueError("a cursor this API issued; start from the first page") from None
    return text


FORMATS: dict[str, Callable[[str], Any]] = {
    "date-time": instant,
    "as-of": as_of,
    "date-or-date-time": day_or_instant,
    "position-cursor": position_cursor,
    "name-cursor": name_cursor,
    "index-cursor": index_cursor,
}


def value(param: Param, text: str) -> Any:
    """One parameter's typed value (ValueError saying what it must be)."""
    if param.type == "integer":
        if not INTEGER.fullmatch(text):
            raise ValueError("an integer")
        number = int(text)
        low = -INTEGER_MAX if param.minimum is None else param.minimum
        high = INTEGER_MAX if param.maximum is None else param.maximum
        if not low <= number <= high:
            raise ValueError(f"an integer from {low} to {high}")
        return number
    if param.type == "boolean":
        if text not in BOOLEANS:
            raise ValueError("true or false")
        return BOOLEANS[text]
    if not text or (param.max_length and len(text) > param.max_length):
        raise ValueError(f"1 to {param.max_length or 'any number of'} characters")
    if "\x00" in text:  # no stored name or value holds one (PostgreSQL cannot store it)
        raise ValueError("text without NUL characters")
    if param.enum and text not in param.enum:
        raise ValueError("one of " + ", ".join(param.enum))
    return FORMATS[param.format](text) if param.format in FORMATS else text


def parse(route: Route, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared parameter by name (defaults filled in; a prefix one as a dict)."""
    # A name is echoed cut short: a 2 MB name must not make a 6 MB refusal.
    unknown = sorted(name[:NAME_ECHO] for name in given if route.param(name) is None)
    if unknown:
        declared = ", ".join(p.name + ("<name>" if p.prefix else "") for p in route.query)
        raise Problem(
            400,
            "unknown_parameter",
            f"unknown query parameter {', '.join(unknown)}; this route reads: {declared or 'none'}",
            unknown[0],
            unknown=unknown,
        )
    parsed: dict[str, Any] = {p.name: {} if p.prefix else p.default for p in route.query}
    for name, raw in given.items():
        param = route.param(name)
        assert param is not None
        try:
            if not isinstance(raw, str):
                raise ValueError("given once")
            typed = value(param, raw)
        except ValueError as error:
            shown = name[:NAME_ECHO]
            raise Problem(400, param.code, f"{shown} must be {error}", shown) from None
        if param.prefix:
            parsed[param.name][name[len(param.name) :]] = typed
        else:
            parsed[name] = typed
    missing = [p.name for p in route.query if p.required and p.name not in given]
    if missing:
        raise Problem(400, "missing_parameter", f"send {missing[0]}", missing[0])
    return parsed


class QueryMiddleware:
    """Parses the query of every routed request from its route's declaration."""

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: Any
    ) -> None:
        route = getattr(req.context, "route", None)
        req.context.query = parse(route, req.params) if route is not None else {}
        for name, given in params.items():
            if isinstance(given, str) and "\x00" in given:  # names nothing stored
                raise Problem(404, "not_found", f"no {name} holds a NUL character", name)

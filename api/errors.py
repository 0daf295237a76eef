"""Every error is application/problem+json (RFC 9457) with a stable `code`; mapped once here."""

from __future__ import annotations

import logging
import sqlite3
from http import HTTPStatus
from typing import Any

import eventsourcing.persistence as es
import falcon
import orjson
import psycopg2
import sqlalchemy.exc as sa_exc
from marshmallow import ValidationError

from ledger import errors as le
from ledger.privacy.keys import Forgotten, MasterKeyMismatch
from projections.snapshot import ProjectionNotReady

log = logging.getLogger("api.errors")
PROBLEM = "application/problem+json"
RETRY_AFTER_SECONDS = "2"
ECHO_LIMIT = 1000  # characters of a detail: a message quoting a 2 MB value is cut here
ERRORS_SHOWN = 20  # fields at fault a 422 names

# Each LedgerError class (and its subclasses, unless listed themselves) -> HTTP status.
STATUS_BY_ERROR: dict[type[le.LedgerError], int] = {
    le.NotFound: 404,
    le.AlreadyExists: 409,
    le.Conflict: 409,
    le.SchemaMismatch: 409,
    le.StaleVersion: 412,
    le.InvalidCommand: 422,
    le.TooLarge: 413,
    le.NotAuthorized: 403,
    le.StorageUnavailable: 503,
    ProjectionNotReady: 503,  # a read that cannot be served yet: retry once caught up
    le.UntrustedArtifact: 422,
    le.ArtifactCorrupt: 500,
    le.EventUnreadable: 500,  # damage on our side, named, never the caller's to fix
    Forgotten: 410,  # the subject's key was destroyed: its personal data is gone for good
    MasterKeyMismatch: 500,  # a configuration error on our side, not the caller's
    le.LedgerError: 400,
}

# The database went away: the client should retry, never see a 500.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    es.OperationalError,
    es.InterfaceError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    sqlite3.OperationalError,
    TimeoutError,
)

# Codes for falcon's own errors, by status.
CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    410: "gone",
    412: "precondition_failed",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    428: "precondition_required",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class Problem(falcon.HTTPError):
    """An HTTP error with a stable code, a field at fault and extra members."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(status, description=detail, headers=headers)
        self.problem_code = code
        self.field = field
        self.extra = extra


def status_of(error: le.LedgerError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def short(text: str, limit: int = ECHO_LIMIT) -> str:
    """A message cut to `limit` characters (it may quote what the client sent)."""
    return text if len(text) <= limit else text[:limit] + "…"


def problem_body(
    status: int, code: str, detail: str, field: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The RFC 9457 members plus `code` (and `field` when one field is at fault)."""
    body: dict[str, Any] = {
        "type": f"urn:provenance-ledger:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": short(detail),
        "code": code,
    }
    if field:
        body["field"] = field
    body.update(extra)
    return body


def serialize_http_error(
    req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError
) -> None:
    """Falcon's own errors (404, 405, 415, ...) rendered as problems too."""
    status = error.status_code
    code = getattr(error, "problem_code", None) or CODE_BY_STATUS.get(status, "error")
    detail = error.description or error.title or HTTPStatus(status).phrase
    extra = getattr(error, "extra", {})
    resp.content_type = PROBLEM
    resp.data = _dumps(problem_body(status, code, detail, getattr(error, "field", None), **extra))


def _respond(resp: falcon.Response, status: int, body: dict[str, Any]) -> None:
    resp.status = status
    resp.content_type = PROBLEM
    resp.data = _dumps(body)


def _dumps(body: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(body, default=str)
    except TypeError:  # a refusal quoting what was sent: a lone surrogate is no UTF-8
        return orjson.dumps(_whole_characters(body), default=str)


def _whole_characters(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_whole_characters(k): _whole_characters(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_whole_characters(v) for v in value]
    return value


def route_of(req: falcon.Request) -> str:
    """The route template, never the path: a path can name a person (/v1/subjects/{id}/forget)."""
    return req.uri_template or "unmatched"


def handle_ledger_error(
    req: falcon.Request, resp: falcon.Response, error: le.LedgerError, params: Any
) -> None:
    status = status_of(error)
    extra = {k: v for k, v in error.extra.items() if k not in ("status", "type", "title")}
    if status == 503:
        resp.set_header("Retry-After", RETRY_AFTER_SECONDS)
    if status >= 500:
        log.error(
            "ledger error %s on %s %s: %s", error.code, req.method, route_of(req), error.detail
        )
    _respond(resp, status, problem_body(status, error.code, error.detail, error.field, **extra))


def handle_validation_error(
    req: falcon.Request, resp: falcon.Response, error: ValidationError, params: Any
) -> None:
    """422 naming every field at fault; `field` is the first one ("body" for the whole body)."""
    every = flatten_messages(error.messages)
    # Field names come from the body: cut, and only the first few (the body is the client's).
    fields = {short(name, 200): message for name, message in list(every.items())[:ERRORS_SHOWN]}
    first = next(iter(fields), None)
    detail = "; ".join(f"{name}: {message}" for name, message in list(fields.items())[:5])
    code = "invalid_body" if first in (None, "body") else "invalid_field"
    _respond(resp, 422, problem_body(422, code, detail or "invalid input", first, errors=fields))


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested messages as {"instances.3.age": "Not a valid number."}."""
    if isinstance(messages, dict):
        out: dict[str, str] = {}
        for key, value in messages.items():
            name = prefix if key == "_schema" else f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten_messages(value, name))
        return out
    if isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages):
        return {prefix or "body": short(" ".join(messages))}
    return {prefix or "body": short(str(messages))}


def handle_unavailable(
    req: falcon.Request, resp: falcon.Response, error: Exception, params: Any
) -> None:
    log.warning(
        "storage unavailable on %s %s: %s", req.method, route_of(req), str(error).splitlines()[0:1]
    )
    resp.set_header("Retry-After", RETRY_AFTER_SECONDS)
    _respond(
        resp,
        503,
        problem_body(
            503, "storage_unavailable", "the ledger's database is unavailable; retry shortly"
        ),
    )


def handle_db_error(
    req: falcon.Request, resp: falcon.Response, error: sa_exc.DBAPIError, params: Any
) -> None:
    if error.connection_invalidated or isinstance(error.orig, UNAVAILABLE_ERRORS):
        handle_unavailable(req, resp, error, params)
    else:
        handle_unexpected(req, resp, error, params)


def handle_malformed_media(
    req: falcon.Request, resp: falcon.Response, error: falcon.MediaMalformedError, params: Any
) -> None:
    cause = error.__cause__ or error.description
    detail = f"the body is not valid JSON ({cause}); note that NaN and Infinity are not JSON"
    _respond(resp, 400, problem_body(400, "malformed_json", detail))


def handle_missing_media(
    req: falcon.Request, resp: falcon.Response, error: falcon.MediaNotFoundError, params: Any
) -> None:
    _respond(resp, 400, problem_body(400, "body_required", "send a JSON body"))


def handle_too_deep(
    req: falcon.Request, resp: falcon.Response, error: RecursionError, params: Any
) -> None:
    """A body nested deeper than any parser here recurses: the caller's input, not our fault."""
    detail = "the body is nested too deeply; send JSON nested at most 1000 levels"
    _respond(resp, 400, problem_body(400, "too_deep", detail))


def handle_unexpected(
    req: falcon.Request, resp: falcon.Response, error: Exception, params: Any
) -> None:
    """Anything else: logged with its traceback here, never sent to the client."""
    if isinstance(error, falcon.HTTPError | falcon.HTTPStatus):
        raise error
    log.exception("unhandled error on %s %s", req.method, route_of(req))
    _respond(
        resp,
        500,
        problem_body(500, "internal_error", "an internal error occurred; it has been logged"),
    )


def register(app: falcon.App) -> None:
    """Install the handlers once; falcon picks the most specific class."""
    app.set_error_serializer(serialize_http_error)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(sa_exc.DBAPIError, handle_db_error)
    app.add_error_handler(UNAVAILABLE_ERRORS, handle_unavailable)
    app.add_error_handler(le.LedgerError, handle_ledger_error)
    app.add_error_handler(ValidationError, handle_validation_error)
    app.add_error_handler(RecursionError, handle_too_deep)
    app.add_error_handler(falcon.MediaMalformedError, handle_malformed_media)
    app.add_error_handler(falcon.MediaNotFoundError, handle_missing_media)

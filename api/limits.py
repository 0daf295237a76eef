"""Body size limits (gunicorn enforces none): 411 without a length, 413 over the limit."""

from __future__ import annotations

from typing import Any

import falcon

from api.errors import Problem

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyLimitMiddleware:
    """Refuses bodies without Content-Length or over the limit, before anything reads them.

    A resource may raise its own limit with a `max_body_bytes` attribute (model uploads).
    """

    def __init__(self, max_body_bytes: int):
        self.max_body_bytes = max_body_bytes
        # (routed resource, method) -> whether it responds: dir() of a resource was most of this check
        self._responders: dict[tuple[Any, str], bool] = {}

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        if (
            req.method not in BODY_METHODS
            or resource is None
            or not self._responds(resource, req.method.lower())
        ):
            return  # no body to read (a method the resource lacks gets falcon's 405)
        length = req.content_length
        if length is None:
            raise Problem(
                411,
                "length_required",
                "send Content-Length; chunked request bodies are not accepted",
            )
        limit = getattr(resource, "max_body_bytes", None) or self.max_body_bytes
        if length > limit:
            raise Problem(
                413,
                "body_too_large",
                f"the body has {length} bytes; the limit is {limit}",
                "body",
                limit=limit,
            )

    def _responds(self, resource: Any, method: str) -> bool:
        """Whether the routed resource has a responder for this method (any suffix)."""
        try:
            found = self._responders.get((resource, method))
        except TypeError:  # unhashable: read each time
            return _responds(resource, method)
        if found is None:
            found = self._responders[(resource, method)] = _responds(resource, method)
        return found


def _responds(resource: Any, method: str) -> bool:
    return any(
        name == f"on_{method}" or name.startswith(f"on_{method}_") for name in _on_names(resource)
    )


def _on_names(resource: Any) -> tuple[str, ...]:
    return tuple(name for name in dir(resource) if name.startswith("on_"))

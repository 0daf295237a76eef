"""Query and path parameters are text the databases can compare: U+0000 is refused first.

PostgreSQL's text holds no U+0000, so a parameter holding one would fail the read that
uses it (a 500); it is a 400 naming the parameter instead, as any malformed parameter is, before any resource runs.
"""

from __future__ import annotations

from typing import Any

import falcon

from api.errors import Problem


class TextParamsMiddleware:
    """Refuses a query or path parameter (or a query parameter's name) holding U+0000."""

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        for name, value in params.items():
            _refuse_nul(name, value)
        if "%00" in req.query_string or "\x00" in req.query_string:
            for name, value in req.params.items():
                _refuse_nul(name, name)
                for text in value if isinstance(value, list) else [value]:
                    _refuse_nul(name, text)


def _refuse_nul(name: str, value: Any) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise Problem(
            400,
            "invalid_parameter",
            f"{name[:100]!r} holds U+0000 (NUL), which the ledger cannot compare: remove it",
            name.replace("\x00", ""),
        )

"""The headers every HTML page of this service sends, set once for all of them.

A page (/dashboard, /docs, any other text/html answer) may run only our own scripts, talk
only to this origin, never be framed, and leaks no URL in a Referer. Every answer is
nosniff: a browser takes each one as the type it says it is.
"""

from __future__ import annotations

from typing import Any

import falcon

# No 'unsafe-inline', no 'unsafe-eval': every script and stylesheet is a file served from
# here (Swagger UI included: its init script is api/static/docs/init.js).
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def is_page(resp: falcon.Response) -> bool:
    return (resp.content_type or "").startswith("text/html")


class SecurityHeadersMiddleware:
    """nosniff on every answer; the page headers on every text/html one (errors included)."""

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        resp.set_header("X-Content-Type-Options", "nosniff")
        if is_page(resp):
            resp.set_headers(PAGE_HEADERS)

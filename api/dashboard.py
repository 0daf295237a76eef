"""GET /dashboard: the web dashboard, from vendored static files (no CDN, nothing fetched).

The page itself needs no key; its data calls send the key the user types in, which the
browser keeps in sessionStorage only (gone when the tab closes). Its Content-Security-Policy
and the other page headers are api/security_headers.py's, as for every HTML answer.
"""

from __future__ import annotations

from pathlib import Path

import falcon

from api.services import Services

STATIC = Path(__file__).parent / "static" / "dashboard"


class DashboardResource:
    """GET /dashboard: the page."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.set_header("Cache-Control", "no-store")
        resp.data = (STATIC / "index.html").read_bytes()


def add_routes(app: falcon.App, services: Services) -> None:
    app.add_route("/dashboard", DashboardResource())
    app.add_static_route("/dashboard/static", str(STATIC))

"""GET /dashboard, / and /favicon.ico: the web dashboard and its landing page, from vendored
static files (no CDN, nothing fetched).

The page itself needs no key; its data calls send the key the user types in, which the
browser keeps in sessionStorage only (gone when the tab closes). Its Content-Security-Policy
and the other page headers are api/security_headers.py's, as for every HTML answer.
"""

from __future__ import annotations

from pathlib import Path

import falcon

from api.services import Services

STATIC = Path(__file__).parent / "static" / "dashboard"
ICON = "image/x-icon"


class StaticFile:
    """GET of one vendored file under a fixed route."""

    def __init__(self, name: str, media: str, cache: str) -> None:
        self.path, self.media, self.cache = STATIC / name, media, cache

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = self.media
        resp.set_header("Cache-Control", self.cache)
        resp.data = self.path.read_bytes()


def add_routes(app: falcon.App, services: Services) -> None:
    # the page carries no data, but a stale copy would pair old scripts with a newer API
    app.add_route("/dashboard", StaticFile("index.html", falcon.MEDIA_HTML, "no-store"))
    app.add_route("/", StaticFile("landing.html", falcon.MEDIA_HTML, "no-store"))
    app.add_route("/favicon.ico", StaticFile("favicon.ico", ICON, "public, max-age=86400"))
    app.add_static_route("/dashboard/static", str(STATIC))

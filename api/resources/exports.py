"""GET /v1/exports/predictions: the compliance export, streamed, or its manifest."""

from __future__ import annotations

import falcon

from api import exporting, params
from api.services import Services
from projections.export import digest_stream


class PredictionExportResource:
    """Streams the file; with `manifest=true`, answers its digests and a signed chain digest."""

    def __init__(self, services: Services):
        self.ledger = services.ledger

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = params.query(req)
        request = exporting.pin(self.ledger, query["from"], query["to"], query["format"])
        actor = req.context.principal.actor
        if query["manifest"]:
            sha, size = digest_stream(exporting.stream(self.ledger, request))
            resp.media = exporting.manifest(self.ledger, request, sha, size)
            exporting.record(self.ledger, request, actor, resp.media["files"])
            return
        exporting.record(
            self.ledger,
            request,
            actor,
            [{"name": exporting.file_name(request), "delivery": "stream"}],
        )
        resp.content_type = exporting.MEDIA_TYPES[request.format]
        resp.set_header(
            "Content-Disposition", f'attachment; filename="{exporting.file_name(request)}"'
        )
        resp.set_header("X-Ledger-Position", str(request.position))
        resp.stream = exporting.stream(self.ledger, request)


def add_routes(app: falcon.App, services: Services) -> None:
    app.add_route("/v1/exports/predictions", PredictionExportResource(services))

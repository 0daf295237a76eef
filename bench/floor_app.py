"""The HTTP floor: a bare Falcon app that parses the prediction body and answers a fixed JSON.

    gunicorn -c deploy/gunicorn.conf.py 'bench.floor_app:wsgi()'

Served with the product's gunicorn options (deploy/gunicorn.conf.py: the same worker class,
threads and keep-alive as `ledger serve`), it is what any Python service on this stack pays
per request before doing anything: gunicorn's parsing and socket work, Falcon's routing, one
orjson parse of the body and one fixed answer. No middleware, no auth, no validation, no
model. The no-recording path's CPU per request is read beside it.
"""

from __future__ import annotations

import falcon
import orjson

from bench.unrecorded_app import PREDICTIONS

# The shape of a single-row answer; the values are fixed, nothing is scored.
ANSWER = orjson.dumps(
    {
        "request_id": "floor",
        "model_id": "floor",
        "value": 0,
        "probabilities": {"0": 1.0, "1": 0.0},
        "flags": [],
        "retried": False,
    }
)


class FloorPredictions:
    """POST /v1/deployments/{name}/predictions: the body parsed, a fixed answer."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        try:
            body = orjson.loads(req.bounded_stream.read())
        except orjson.JSONDecodeError:
            raise falcon.HTTPBadRequest(title="malformed JSON") from None
        if not isinstance(body, dict):
            raise falcon.HTTPBadRequest(title="a JSON object is expected")
        resp.status = falcon.HTTP_201
        resp.content_type = falcon.MEDIA_JSON
        resp.data = ANSWER


class Alive:
    """GET /healthz: what the benchmark's start-up waits for."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


def create_floor_app() -> falcon.App:
    app = falcon.App()
    app.add_route(PREDICTIONS, FloorPredictions())
    app.add_route("/healthz", Alive())
    return app


def wsgi() -> falcon.App:
    """Gunicorn's app factory, as bench.unrecorded_app's."""
    return create_floor_app()

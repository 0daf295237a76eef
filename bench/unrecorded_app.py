"""The no-recording baseline: the product's WSGI app whose predictions route records nothing.

    gunicorn -c deploy/gunicorn.conf.py 'bench.unrecorded_app:wsgi()'

Production has no switch that turns recording off; the benchmark composes its baseline
from the same parts instead: `api.app.create_app` (middleware, auth, limits, errors,
every other route) with the predictions resource replaced by one that validates and
scores exactly as `serving.predict.predict` does (`score_request`) and answers without
recording (`unrecorded_answer`).
"""

from __future__ import annotations

import falcon

from api import params
from api.app import LedgerApp, create_app
from api.observability import configure_logging
from api.services import Services
from ledger.settings import Settings
from serving.predict import score_request, unrecorded_answer

PREDICTIONS = "/v1/deployments/{name}/predictions"  # the product's template, so it replaces it


class UnrecordedPredictions:
    """POST /v1/deployments/{name}/predictions: validated and scored, answered, not recorded."""

    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        scored = score_request(self.services.serving, name, params.body(req))
        resp.status = falcon.HTTP_201  # what the product answers for a new prediction
        resp.media = unrecorded_answer(scored)


def create_unrecorded_app(settings: Settings | None = None) -> LedgerApp:
    """The product's app, its predictions route answered by UnrecordedPredictions."""
    app = create_app(settings)
    app.add_route(PREDICTIONS, UnrecordedPredictions(app.services))  # Falcon replaces the route
    return app


def wsgi() -> LedgerApp:
    """Gunicorn's app factory, called in each worker after the fork (as api/wsgi.py's app)."""
    settings = Settings.at_start()
    configure_logging(settings.log_level)
    return create_unrecorded_app(settings)

"""POST /v1/subjects/{subject_id}/forget (admin): crypto-shredding of one subject."""

from __future__ import annotations

from typing import Any

import falcon

from api import params


class SubjectForgetResource:
    """Record SubjectForgotten and destroy the subject's keys; a second call records nothing."""

    def __init__(self, services: Any):
        self.ledger = services.ledger

    def on_post(self, req: falcon.Request, resp: falcon.Response, subject_id: str) -> None:
        body = params.load(req)
        result = self.ledger.forget_subject(subject_id, actor=req.context.principal.actor, **body)
        resp.media = result.as_dict()
        resp.status = falcon.HTTP_200


def add_routes(app: falcon.App, services: Any) -> None:
    app.add_route("/v1/subjects/{subject_id}/forget", SubjectForgetResource(services))

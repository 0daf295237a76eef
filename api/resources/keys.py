"""POST /v1/keys and DELETE /v1/keys/{key_id}: API keys over HTTP (admin)."""

from __future__ import annotations

from typing import Any

import falcon

from api import params


class KeysResource:
    """Issue a key (its secret is answered once) or revoke one (an event; nothing is deleted)."""

    def __init__(self, services: Any):
        self.services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = params.load(req)
        ledger = self.services.ledger
        key_id, key = ledger.issue_api_key(actor=req.context.principal.actor, **body)
        issued = ledger.api_key(key_id)
        resp.media = {
            "key_id": key_id,
            "key": key,
            **body,
            "client": issued.client,
            "grants": issued.grants,
        }
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/keys/{key_id}"

    def on_delete_key(self, req: falcon.Request, resp: falcon.Response, key_id: str) -> None:
        reason = params.query(req)["reason"] or "revoked over the API"
        self.services.ledger.revoke_api_key(
            key_id, reason=reason, actor=req.context.principal.actor
        )
        _forget_cached_keys(self.services)
        resp.media = {"key_id": key_id, "revoked": True}


def _forget_cached_keys(services: Any) -> None:
    # This worker refuses the revoked key at once; others within the cache's few seconds.
    cache = getattr(services, "key_cache", None) or getattr(services, "keys", None)
    if hasattr(cache, "clear"):
        cache.clear()


def add_routes(app: falcon.App, services: Any) -> None:
    keys = KeysResource(services)
    app.add_route("/v1/keys", keys)
    app.add_route("/v1/keys/{key_id}", keys, suffix="key")

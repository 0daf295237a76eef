"""API keys over HTTP: issue (the secret is answered once) and revoke."""

from __future__ import annotations

from api.routes.table import ADMIN, Answer, Param, Route, roles
from api.schemas.keys import KeyCreateSchema, KeyIssuedSchema, KeyRevokedSchema

ROUTES = (
    Route(
        "POST",
        "/v1/keys",
        roles(ADMIN),
        "Issue an API key",
        "keys",
        {201: Answer("the key, shown once", KeyIssuedSchema)},
        body=KeyCreateSchema,
    ),
    Route(
        "DELETE",
        "/v1/keys/{key_id}",
        roles(ADMIN),
        "Revoke an API key (an event; nothing is deleted)",
        "keys",
        {200: Answer("revoked", KeyRevokedSchema)},
        query=(Param("reason", "why", max_length=2000),),
    ),
)

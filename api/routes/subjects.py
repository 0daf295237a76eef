"""Privacy: erase one subject's personal data (crypto-shredding)."""

from __future__ import annotations

from api.routes.table import ADMIN, Answer, Route, roles
from api.schemas.subjects import ForgetRequestSchema, ForgetResultSchema

ROUTES = (
    Route(
        "POST",
        "/v1/subjects/{subject_id}/forget",
        roles(ADMIN),
        "Erase a subject's personal data",
        "subjects and privacy",
        {200: Answer("what the erasure did", ForgetResultSchema)},
        body=ForgetRequestSchema,
    ),
)

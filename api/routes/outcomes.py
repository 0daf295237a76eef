"""Outcomes: what came true, by prediction id or by deployment and request id."""

from __future__ import annotations

from api.routes.table import PREDICTOR, Answer, Many, OneOf, Route, roles
from api.schemas.outcomes import OutcomeListSchema, OutcomeResultSchema, OutcomeSchema

RECORDED = OneOf(
    (OutcomeResultSchema, OutcomeListSchema), pick=lambda answer: int("outcomes" in answer)
)

ROUTES = (
    Route(
        "POST",
        "/v1/outcomes",
        roles(PREDICTOR),
        "Report actual outcomes (a list is all or nothing)",
        "outcomes",
        {
            201: Answer("the outcomes as recorded", RECORDED),
            200: Answer("every outcome a retry: the originals, nothing recorded", RECORDED),
        },
        body=OneOf((OutcomeSchema, Many(OutcomeSchema))),
    ),
)

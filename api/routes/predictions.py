"""Predictions: score one row or a batch, one prediction's provenance, the index, performance."""

from __future__ import annotations

from api.routes.common import AS_OF, MIN_POSITION, cursor, instant, limit
from api.routes.table import ADMIN, AUDITOR, PREDICTOR, Answer, OneOf, Param, Route, roles
from api.schemas.predictions import (
    BatchResultSchema,
    ExplanationSchema,
    PredictionRequestSchema,
    PredictionResultSchema,
    ProvenanceSchema,
)
from api.schemas.queries import PerformanceSchema, PredictionListSchema

TAG = "predictions"
SCORED = OneOf(
    (PredictionResultSchema, BatchResultSchema), pick=lambda answer: int("predictions" in answer)
)
DEPLOYMENT = Param("deployment", "the deployment's name")
MODEL = Param("model", "only this model's predictions (its id)")
WINDOW = (instant("from", "recorded at or after"), instant("to", "recorded before"))

ROUTES = (
    Route(
        "POST",
        "/v1/deployments/{name}/predictions",
        roles(PREDICTOR),
        "Score one row or a batch",
        TAG,
        {
            201: Answer("scored and recorded", SCORED, direct=True),
            200: Answer("a retried request's original", SCORED, direct=True),
        },
        body=PredictionRequestSchema,
    ),
    Route(
        "GET",
        "/v1/predictions/{prediction_id}",
        roles(AUDITOR, ADMIN, PREDICTOR),
        "The provenance of one prediction",
        TAG,
        {200: Answer("features, outputs, lineage, policy, outcomes, chain", ProvenanceSchema)},
        query=(AS_OF,),
        own_only=frozenset({PREDICTOR}),
        description="A predictor reads only the predictions its own key recorded.",
    ),
    Route(
        "GET",
        "/v1/predictions/{prediction_id}/explanation",
        roles(AUDITOR, ADMIN),
        "Why this value: each feature's exact contribution",
        TAG,
        {200: Answer("contributions per feature, base value, output, method", ExplanationSchema)},
        query=(AS_OF,),
        description="The served model scores the recorded features again; SHAP's exact "
        "explainers split its output against the training sample recorded with the model. "
        "A model no exact explainer covers is refused: 409 `explanation_not_exact`. "
        "Recorded once per prediction, caller and day.",
    ),
    Route(
        "GET",
        "/v1/predictions",
        roles(AUDITOR, ADMIN),
        "The prediction index",
        TAG,
        {200: Answer("a page of predictions, newest first", PredictionListSchema)},
        query=(
            AS_OF,
            MIN_POSITION,
            DEPLOYMENT,
            MODEL,
            *WINDOW,
            Param(
                "has_outcome",
                "only predictions with (true) or without (false) an outcome",
                type="boolean",
            ),
            Param(
                "flagged", "only predictions with (true) or without (false) flags", type="boolean"
            ),
            Param(
                "feature.",
                "`feature.<name>=<value>`: only rows with this feature value; <name> is a"
                " feature of the input schema (else 422 `unknown_feature`)",
                prefix=True,
            ),
            limit(100, 1000),
            cursor("index"),
        ),
    ),
    Route(
        "GET",
        "/v1/performance",
        roles(AUDITOR, ADMIN),
        "Metrics per model, window and slice",
        TAG,
        {200: Answer("metrics with their counts", PerformanceSchema)},
        query=(
            AS_OF,
            MIN_POSITION,
            Param("deployment", "the deployment's name", required=True),
            MODEL,
            *WINDOW,
            Param(
                "window_days",
                "the last N days (instead of from/to)",
                type="integer",
                minimum=1,
                maximum=3650,
            ),
            Param("slice", "a feature to slice the metrics by"),
        ),
    ),
)

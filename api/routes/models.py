"""Models: upload a skops artifact with declared metadata, the model index, one model."""

from __future__ import annotations

from api.routes.common import AS_OF, MIN_POSITION, cursor, limit
from api.routes.table import ADMIN, Answer, Param, Route, roles
from api.schemas.queries import ModelListSchema, ModelSchema
from api.schemas.uploads import UploadedModelSchema

TAG = "models"
UPLOAD = {
    "description": "multipart (`file` + `metadata` JSON of ModelUpload) or the raw skops bytes "
    "with the metadata in X-Model-Metadata",
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "metadata"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "minLength": 1},
                    "metadata": {
                        "type": "string",
                        "description": "JSON: name, task, features, algorithm, deployment, declared",
                    },
                },
            }
        },
        "application/octet-stream": {
            "schema": {"type": "string", "format": "binary", "minLength": 1}
        },
    },
}

ROUTES = (
    Route(
        "POST",
        "/v1/models",
        roles(ADMIN),
        "Upload a skops model with declared metadata",
        TAG,
        {201: Answer("the registered model", UploadedModelSchema)},
        headers=(Param("X-Model-Metadata", "the metadata as JSON, with a raw skops body"),),
        body=UPLOAD,
    ),
    Route(
        "GET",
        "/v1/models",
        roles("any"),
        "The model index",
        TAG,
        {200: Answer("a page of models, by id", ModelListSchema)},
        query=(
            AS_OF,
            MIN_POSITION,
            Param("deployment", "only models that ever served this deployment"),
            limit(100, 1000),
            cursor("name"),
        ),
    ),
    Route(
        "GET",
        "/v1/models/{model_id}",
        roles("any"),
        "One model with its provenance and roles over time",
        TAG,
        {200: Answer("the model", ModelSchema)},
        query=(AS_OF, MIN_POSITION),
    ),
)

"""POST /v1/models: upload a skops model with declared metadata (admin).

Two shapes: multipart/form-data with a `file` part (the skops bytes) and a `metadata`
part (JSON), or the raw skops bytes as the body with the metadata as JSON in the
`X-Model-Metadata` header. The model is loaded with skops' trusted types only, so an
artifact that would run arbitrary code on load is refused before anything is stored.
"""

from __future__ import annotations

from typing import Any

import falcon
import orjson

from api.errors import Problem
from api.resources.queries import model_index
from api.schemas.uploads import ModelUploadSchema
from ledger.artifacts import UPLOAD_TRUSTED_TYPES, loads_skops

METADATA_HEADER = "X-Model-Metadata"


class ModelUploadResource:
    """Stores the artifact by content hash and registers it with provenance `declared`."""

    def __init__(self, services: Any):
        self.services = services
        self.max_body_bytes = services.settings.max_model_bytes  # read by the body limit middleware

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        model_index(self.services, req, resp)  # the model index: api/resources/queries.py

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        content, metadata = read_upload(req)
        model = loads_skops(
            content, trusted=list(UPLOAD_TRUSTED_TYPES)
        )  # others -> 422 untrusted_artifact
        declared = ModelUploadSchema().load(metadata)
        answer = self._register(content, model, declared, req.context.principal.actor)
        resp.media = answer
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/models/{answer['model_id']}"

    def _register(
        self, content: bytes, model: Any, meta: dict[str, Any], actor: str
    ) -> dict[str, Any]:
        check_model(model, meta)
        ledger = self.services.ledger
        algorithm = meta["algorithm"] or _class_path(model)
        classes = _classes(model) if meta["task"] == "classification" else None
        digest = ledger.artifacts.put(content)
        model_id = ledger.register_model(
            name=meta["name"],
            artifact_digest=digest,
            features=meta["features"],
            algorithm=algorithm,
            task=meta["task"],
            classes=classes,
            training_run_id=None,
            provenance="declared",
            declared=meta["declared"],
            actor=actor,
        )
        if meta["deployment"]:
            ledger.add_model(meta["deployment"], model_id, actor)
            self.services.deployment_changed(meta["deployment"])
        return {
            **meta,
            "model_id": str(model_id),
            "algorithm": algorithm,
            "classes": classes,
            "artifact_digest": digest,
            "provenance": "declared",
        }


def read_upload(req: falcon.Request) -> tuple[bytes, Any]:
    """(skops bytes, metadata as parsed JSON) from either upload shape."""
    if (req.content_type or "").startswith("multipart/form-data"):
        return _read_multipart(req)
    header = req.get_header(METADATA_HEADER)
    if header is None:
        raise Problem(
            422,
            "metadata_required",
            f"send the model's metadata as JSON in {METADATA_HEADER}, or upload multipart/form-data "
            "with `file` and `metadata` parts",
            "metadata",
        )
    return req.bounded_stream.read(), _json(header.encode())


def _read_multipart(req: falcon.Request) -> tuple[bytes, Any]:
    content, metadata = None, None
    for part in req.get_media():
        if part.name == "file":
            content = part.stream.read()  # the stream: get_data() would cap the part at 1 MiB
        elif part.name == "metadata":
            metadata = _json(part.stream.read())
    if content is None or metadata is None:
        raise Problem(
            422,
            "upload_incomplete",
            "a multipart upload needs a `file` part and a `metadata` part",
            "file" if content is None else "metadata",
        )
    return content, metadata


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Problem(
            422, "invalid_metadata", f"the metadata is not valid JSON: {error}", "metadata"
        ) from None


def check_model(model: Any, meta: dict[str, Any]) -> None:
    """The artifact can score and reads the features it declares."""
    if not callable(getattr(model, "predict", None)):
        raise Problem(422, "not_a_model", "the artifact has no predict method", "file")
    if meta["task"] == "classification" and not callable(getattr(model, "predict_proba", None)):
        raise Problem(422, "not_a_classifier", "a classification model needs predict_proba", "file")
    names = getattr(model, "feature_names_in_", None)
    if names is not None and list(names) != list(meta["features"]):
        raise Problem(
            422,
            "features_mismatch",
            f"the model was fitted on {list(names)}; declare exactly those features in that order",
            "features",
        )
    count = getattr(model, "n_features_in_", None)
    if count is not None and count != len(meta["features"]):
        raise Problem(
            422,
            "features_mismatch",
            f"the model reads {count} features; {len(meta['features'])} were declared",
            "features",
        )


def _class_path(model: Any) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def _classes(model: Any) -> list[Any] | None:
    classes = getattr(model, "classes_", None)
    return None if classes is None else [c.item() if hasattr(c, "item") else c for c in classes]


def add_routes(app: falcon.App, services: Any) -> None:
    """POST /v1/models. Falcon keeps one resource per path: GET /v1/models (the model index,
    from the projections) must be an `on_get` on this same resource, not a second add_route."""
    app.add_route("/v1/models", ModelUploadResource(services))

"""Uploading a skops model: an ordinary pipeline joins; types that could crash a worker do not."""

from __future__ import annotations

import json

import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from ledger.artifacts import dumps_skops
from tests.integration.api_support import (
    ROW,
    Api,
    create_deployment,
    make_api,
    pipeline,
    predict,
    training_frame,
)


@pytest.fixture
def api(ledger) -> Api:
    return make_api(ledger)


def upload(api: Api, model, deployment: str | None = None):
    metadata = {
        "name": "uploaded",
        "task": "classification",
        "features": ["age", "income", "plan"],
        "deployment": deployment,
        "declared": {"trained_by": "a partner team"},
    }
    return api.call(
        "POST",
        "/v1/models",
        body=dumps_skops(model),
        headers={
            "Content-Type": "application/octet-stream",
            "X-Model-Metadata": json.dumps(metadata),
        },
    )


def test_an_uploaded_imputing_pipeline_is_declared_and_serves(api: Api) -> None:
    rows, labels = training_frame()
    model = pipeline(LogisticRegression(max_iter=300), [0, 1], [2]).fit(rows, labels)
    assert create_deployment(api).status_code == 201
    answer = upload(api, model, deployment="churn")
    assert answer.status_code == 201, answer.text
    assert answer.json["provenance"] == "declared" and answer.json["declared"] == {
        "trained_by": "a partner team"
    }
    served = predict(api, {"features": ROW, "request_id": "u-1"})
    assert served.status_code == 201 and served.json["model_id"] == answer.json["model_id"]


def test_an_uploaded_forest_is_refused_naming_the_untrusted_type(api: Api) -> None:
    rows, labels = training_frame()
    forest = pipeline(RandomForestClassifier(n_estimators=3, random_state=0), [0, 1], [2]).fit(
        rows, labels
    )
    answer = upload(api, forest)
    assert answer.status_code == 422 and answer.json["code"] == "untrusted_artifact"
    assert "sklearn.tree._tree.Tree" in answer.json["detail"]

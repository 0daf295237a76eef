"""Reproducing a prediction uses the scorer it was recorded with."""

from __future__ import annotations

import pytest

from serving.reproduce import reproduce, scorer_of
from tests.integration.api_support import ROW, Api, deployment_with_models, make_api, predict


@pytest.fixture
def api(ledger) -> Api:
    return make_api(ledger)


def test_reproduce_scores_with_the_recorded_scorer_and_the_pipeline_when_none_was_recorded(
    api: Api,
) -> None:
    deployment_with_models(api)
    answer = predict(api, {"features": ROW, "request_id": "r-1"}).json
    result = reproduce(api.ledger, answer["prediction_id"])
    assert result.identical and set(result.scoring["scorer"].values()) == {"compiled-v1"}
    assert scorer_of({"mode": "single"}, answer["model_id"]) == "pipeline"

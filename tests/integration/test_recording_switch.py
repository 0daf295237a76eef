"""The benchmark-only switch: LEDGER_RECORD_PREDICTIONS=0 scores the same and records nothing."""

from __future__ import annotations

import pytest

from policies.reproduce import reproduce, scorer_of
from tests.integration.api_support import ROW, Api, deployment_with_models, make_api, predict


@pytest.fixture
def api(ledger) -> Api:
    return make_api(ledger)


def test_with_recording_off_the_answer_is_the_same_without_a_prediction_id(api: Api, monkeypatch) -> None:
    deployment_with_models(api)
    recorded = predict(api, {"features": ROW, "request_id": "on-1"})
    monkeypatch.setenv("LEDGER_RECORD_PREDICTIONS", "0")
    unrecorded = predict(api, {"features": ROW, "request_id": "off-1"})
    assert (recorded.status_code, unrecorded.status_code) == (201, 200)
    assert "prediction_id" not in unrecorded.json and "Location" not in unrecorded.headers
    same = ("model_id", "value", "probabilities", "flags")
    assert {k: unrecorded.json[k] for k in same} == {k: recorded.json[k] for k in same}
    assert predict(api, {"features": {**ROW, "age": "old"}, "request_id": "off-2"}).status_code == 422
    monkeypatch.setenv("LEDGER_RECORD_PREDICTIONS", "1")
    assert predict(api, {"features": ROW, "request_id": "off-1"}).status_code == 201  # off-1 was never stored


def test_reproduce_scores_with_the_recorded_scorer_and_the_pipeline_when_none_was_recorded(api: Api) -> None:
    deployment_with_models(api)
    answer = predict(api, {"features": ROW, "request_id": "r-1"}).json
    result = reproduce(api.ledger, answer["prediction_id"])
    assert result.identical and set(result.scoring["scorer"].values()) == {"compiled-v1"}
    assert scorer_of({"mode": "single"}, answer["model_id"]) == "pipeline"

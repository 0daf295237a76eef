"""End to end over real HTTP (gunicorn in a subprocess), on SQLite and on PostgreSQL.

Train one model with the CLI and upload another over the API, deploy both, predict a row
and a batch, report outcomes, follow every link of a prediction's provenance, promote the
challenger, and verify the chain from the auditor's event stream alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from ledger import notary
from ledger.application import Ledger
from ledger.artifacts import dumps_skops
from ledger.settings import Settings
from tests.conftest import drop_postgres_database, fresh_postgres_database
from tests.e2e.server import EXAMPLE_ROW, REPO, Server
from trainers.demo_data import generate
from trainers.schema import deployment_for

pytestmark = pytest.mark.slow
SPEC = REPO / "examples" / "specs" / "churn_classifier.yaml"
UPLOADED_FEATURES = ["tenure_months", "monthly_charges", "support_calls"]
ROW = EXAMPLE_ROW


def issue_keys(home: Path, url: str) -> dict[str, str]:
    """A key per role and the signing key, written in-process (each CLI call costs an import)."""
    settings = Settings(home=home, database_url=url, group_commit=False)
    ledger = Ledger(settings)
    try:
        notary.create_signing_key(ledger, notary.default_key_path(settings), "e2e")
        return {
            role: ledger.issue_api_key(role=role, actor="e2e")[1]
            for role in ("admin", "predictor", "auditor")
        }
    finally:
        ledger.close()


def upload_body() -> bytes:
    """A declared model on three numeric features, fitted here on the demo generator."""
    frame = generate(600, seed=3)
    model = LogisticRegression(max_iter=500)
    model.fit(frame[UPLOADED_FEATURES].to_numpy(float), frame["churned"].to_numpy())
    return dumps_skops(model)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A running server with the churn deployment: a trained leader and an uploaded challenger."""
    home = tmp_path_factory.mktemp(f"e2e-{request.param}")
    url = (
        f"sqlite:///{home / 'ledger.db'}"
        if request.param == "sqlite"
        else fresh_postgres_database()
    )
    server = Server(home, url)
    try:
        keys = issue_keys(home, url)
        server.start()
        try:
            build_deployment(server, keys)
        except Exception as error:  # say what the server said, not only that it went away
            raise AssertionError(f"setting up failed: {error}\n{server.log_tail()}") from error
        yield server, keys
    finally:
        server.stop()
        if request.param == "postgres":
            drop_postgres_database(url)


def build_deployment(server: Server, keys: dict[str, str]) -> None:
    spec = yaml.safe_load(SPEC.read_text())
    deployment = {
        **deployment_for(spec, name="churn", outcome_maturity_days=0),
        "positive_label": 1,
    }
    created = server.call("POST", "/v1/deployments", deployment, key=keys["admin"])
    assert created.status == 201, created.body
    trained = server.cli(
        "train", str(SPEC), "--deployment", "churn", env={"LEDGER_API_KEY": keys["admin"]}
    )
    assert trained.returncode == 0, trained.stderr
    metadata = {
        "name": "uploaded-logistic",
        "task": "classification",
        "features": UPLOADED_FEATURES,
        "deployment": "churn",
        "declared": {"trained_on": "demo generator seed 3", "by": "e2e"},
    }
    uploaded = server.call(
        "POST",
        "/v1/models",
        raw=upload_body(),
        key=keys["admin"],
        headers={
            "Content-Type": "application/octet-stream",
            "X-Model-Metadata": json.dumps(metadata),
        },
    )
    assert uploaded.status == 201, uploaded.body


def predict(server: Server, keys: dict[str, str], body: dict) -> dict:
    answer = server.call(
        "POST",
        "/v1/deployments/churn/predictions",
        body,
        key=keys["predictor"],
        headers={"X-Request-Id": f"e2e-{body['request_id']}"},
    )
    assert answer.status in (200, 201), answer.body  # 201 recorded now, 200 a retried original
    assert answer.headers["x-request-id"] == f"e2e-{body['request_id']}"
    return answer.json


def provenance(server: Server, keys: dict[str, str], prediction_id: str) -> dict:
    answer = server.call("GET", f"/v1/predictions/{prediction_id}", key=keys["auditor"])
    assert answer.status == 200, answer.body
    return answer.json


def test_a_deployment_has_a_trained_leader_and_an_uploaded_challenger(world):
    server, keys = world
    deployment = server.call("GET", "/v1/deployments/churn", key=keys["auditor"]).json
    assert deployment["leader"]["provenance"] == "captured"
    assert [c["provenance"] for c in deployment["challengers"]] == ["declared"]


def test_a_prediction_answers_with_its_id_and_the_serving_model(world):
    server, keys = world
    answer = predict(server, keys, {"request_id": "one", "features": ROW})
    assert answer["prediction_id"] and answer["model_id"]
    assert answer["value"] in (0, 1) and set(answer["probabilities"]) == {"0", "1"}
    assert (
        predict(server, keys, {"request_id": "one", "features": ROW})["prediction_id"]
        == answer["prediction_id"]
    )


def test_every_link_of_the_provenance_answer_is_there(world):
    server, keys = world
    answer = predict(server, keys, {"request_id": "links", "features": ROW})
    record = provenance(server, keys, answer["prediction_id"])
    served, run = record["served"], record["served"]["training_run"]
    assert record["features"]["tenure_months"] == 7 and "customer_id" in record["sealed_fields"]
    assert served["model_id"] == answer["model_id"] and len(record["outputs"]) == 2
    assert [s["provenance"] for s in record["shadow"]] == ["declared"]
    assert run["status"] == "completed" and run["metrics"]["roc_auc"] > 0.5
    assert (
        len(run["code_version"]["git_commit"]) == 40
        and "scikit-learn" in run["code_version"]["packages"]
    )
    for dataset in run["datasets"].values():
        assert len(dataset["fingerprint"]) == 64 and dataset["rows"] > 0
        assert dataset["time_range"]["start"] < dataset["time_range"]["end"]
    assert (
        record["policy"]["name"] == "manual" and record["leader"]["model_id"] == served["model_id"]
    )
    assert record["caller"].startswith("key:") and record["position"] > 0


def test_a_batch_answers_one_prediction_per_row(world):
    server, keys = world
    rows = [ROW, {**ROW, "customer_id": "c-1002", "income": None, "region": "south"}]
    answer = predict(server, keys, {"request_id": "batch-1", "instances": rows})
    assert [p["request_id"] for p in answer["predictions"]] == ["batch-1#0", "batch-1#1"]
    record = provenance(server, keys, answer["predictions"][1]["prediction_id"])
    assert record["scoring"]["mode"] == "batch"


def test_outcomes_arrive_by_prediction_id_and_by_request_id(world):
    server, keys = world
    first = predict(server, keys, {"request_id": "outcome-1", "features": ROW})
    predict(server, keys, {"request_id": "outcome-2", "features": ROW})
    outcomes = [
        {"prediction_id": first["prediction_id"], "actual": 1},
        {"deployment": "churn", "request_id": "outcome-2", "actual": 0},
    ]
    answer = server.call("POST", "/v1/outcomes", outcomes, key=keys["predictor"])
    assert answer.status == 201, answer.body
    assert provenance(server, keys, first["prediction_id"])["outcome"]["actual"] == 1


def test_a_promoted_challenger_serves_and_the_promotion_is_in_the_provenance(world):
    server, keys = world
    deployment = server.call("GET", "/v1/deployments/churn", key=keys["admin"])
    challenger = deployment.json["challengers"][0]["id"]
    promoted = server.call(
        "PUT",
        "/v1/deployments/churn/leader",
        {"model_id": challenger, "reason": "e2e"},
        key=keys["admin"],
        headers={"If-Match": deployment.headers["etag"]},
    )
    assert promoted.status == 200, promoted.body
    answer = predict(server, keys, {"request_id": "after-promotion", "features": ROW})
    record = provenance(server, keys, answer["prediction_id"])
    assert answer["model_id"] == challenger and record["leader"]["set_by"]["reason"] == "e2e"


def test_the_chain_verifies_from_the_event_stream_alone(world):
    server, keys = world
    digest = server.call("GET", "/v1/ledger/digest", key=keys["auditor"])
    assert digest.status == 200, digest.body
    (server.home / "digest.json").write_text(digest.body.decode())
    verified = server.cli(
        "verify",
        "--from-url",
        f"{server.url}/v1/ledger/events?limit=7",
        "--digest",
        str(server.home / "digest.json"),
        env={"LEDGER_API_KEY": keys["auditor"], "LEDGER_DATABASE_URL": "sqlite:////nonexistent"},
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_metrics_count_served_predictions_by_model(world):
    server, keys = world
    text = server.call("GET", "/metrics", key=keys["admin"]).body.decode()
    assert 'ledger_predictions_total{deployment="churn"' in text
    assert (
        'ledger_http_requests_total{method="POST",route="/v1/deployments/{name}/predictions",status="201"}'
        in text
    )
